"""Layer-by-layer traces: every named block's output with its statistics and time, and where two traces part.

Built on the model's one hook (`LevitModel.__call__(x, hook)`), which reports 'stem', every block of
`config.blocks` (e.g. 'stages.0.blocks.1.attn', 'stages.1.downsample.attn'), 'pool' and 'logits'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Step:
    """One named output of the forward pass and the time spent since the previous one."""

    name: str
    value: np.ndarray
    seconds: float

    def stats(self) -> dict:
        """shape, mean, std, min, max of the output (statistics in float64)."""
        v = self.value.astype(np.float64)
        return {"shape": list(self.value.shape), "mean": float(v.mean()), "std": float(v.std()),
                "min": float(v.min()), "max": float(v.max())}


def max_differences(steps: list[Step], reference: dict[str, np.ndarray]) -> dict[str, Optional[tuple[float, float]]]:
    """Per step: (max |ours - reference|, that divided by max |reference|), or None when the reference lacks it."""
    out: dict[str, Optional[tuple[float, float]]] = {}
    for step in steps:
        ref = reference.get(step.name)
        if ref is None or ref.shape != step.value.shape:
            out[step.name] = None
            continue
        diff = float(np.abs(step.value.astype(np.float64) - ref).max())
        scale = float(np.abs(ref).max())
        out[step.name] = (diff, diff / scale if scale else diff)
    return out


def first_divergence(differences: dict[str, Optional[tuple[float, float]]], rel: float = 1e-4) -> Optional[str]:
    """The first step whose relative difference exceeds `rel` (or that the reference lacks), else None."""
    for name, diff in differences.items():
        if diff is None or diff[1] > rel:
            return name
    return None
