"""What an export is asked for, checked before any work: opset, batch, input size and the crop rule.

Light on purpose (no NumPy, no onnx): the CLI reads the defaults and ranges from here when it builds its options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

MIN_OPSET = 14  # HardSwish and Reshape-14 first appear in opset 14
MAX_OPSET = 23  # the newest opset the graph was checked at (ONNX Runtime 1.32, OpenVINO 2026.4)
DEFAULT_OPSET = 17
DEFAULT_SIZE = (224, 224)
DYNAMIC = "dynamic"


@dataclass(frozen=True)
class ExportSettings:
    """One export's shape and format: `batch` None means a symbolic (dynamic) batch dimension."""

    opset: int = DEFAULT_OPSET
    batch: Optional[int] = None
    height: int = DEFAULT_SIZE[0]
    width: int = DEFAULT_SIZE[1]
    crop_pct: float = 0.875  # recorded in the metadata: the resize before the centre crop

    def check(self, patch_size: int = 16) -> None:
        """Raise ValueError, naming the setting, unless the graph can be written with these settings."""
        from levit_np.model.grid import check_input_size

        check_opset(self.opset)
        if self.batch is not None and (isinstance(self.batch, bool) or int(self.batch) != self.batch
                                       or self.batch < 1):
            raise ValueError(f"batch must be a positive integer or {DYNAMIC!r}, got {self.batch!r}")
        check_input_size(self.height, self.width, patch_size)
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}")


def check_opset(opset: int) -> None:
    """Raise ValueError unless the graph can be written at `opset`."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is not supported: choose {MIN_OPSET}..{MAX_OPSET} (HardSwish needs 14; "
                         f"{MAX_OPSET} is the newest checked in ONNX Runtime and OpenVINO)")


def parse_batch(text: str) -> Optional[int]:
    """'dynamic' -> None, 'N' -> N (a positive integer); anything else raises ValueError."""
    value = str(text).strip().lower()
    if value == DYNAMIC:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"batch must be a positive integer or {DYNAMIC!r}, got {text!r}")
    return int(value)
