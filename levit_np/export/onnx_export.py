"""`levit export`: weights (a levit-np .h5 or any checkpoint `levit convert` reads) -> an ONNX file.

    source = read_source("LeViT-128S-96703c44.pth")
    export_onnx(source, "levit_128s.onnx", ExportSettings(opset=17, batch=None, height=224, width=224))

The weights are folded (kernels/fold.py), the graph is built node by node (onnx_graph.py), checked with
`onnx.checker` and written atomically: a failure leaves no file behind. Deterministic: the same weights and
settings give the same bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from levit_np.errors import LevitError
from levit_np.export.metadata import model_metadata
from levit_np.export.settings import ExportSettings
from levit_np.kernels.fold import fold_model
from levit_np.model.config import LevitConfig, get_config
from levit_np.weights.fileio import atomic_output, check_output_path, is_hdf5, sha256_file

SUFFIXES = (".onnx",)


class ExportError(LevitError):
    """The export cannot run: the onnx package is missing, or the model is not one the graph covers."""


@dataclass
class ExportSource:
    """The weights to export and where they came from (metadata entries, strings)."""

    config: LevitConfig
    params: dict[str, np.ndarray]
    provenance: dict[str, str] = field(default_factory=dict)


def read_source(path: str | os.PathLike, variant: Optional[str] = None) -> ExportSource:
    """A levit-np .h5 file, or any checkpoint `levit convert` reads (converted in memory), with its provenance.

    weights_* name the file read; source_* the original PyTorch checkpoint (for an .h5, the one it was converted
    from, as its attributes record).
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"cannot read weights {path}: no such file")
    provenance = {"weights_file": path.name, "weights_sha256": sha256_file(path)}
    if is_hdf5(path):
        from levit_np.weights.hdf5_file import read_weights

        info, params = read_weights(path)
        for key in ("source_name", "source_sha256", "source_layout"):
            if key in info.attrs:
                provenance[key] = str(info.attrs[key])
        return ExportSource(info.config, params, provenance)
    from levit_np.weights.convert import read_checkpoint

    conversion = read_checkpoint(path, variant)
    provenance.update(source_name=path.name, source_sha256=provenance["weights_sha256"],
                      source_layout=conversion.layout.name)
    return ExportSource(conversion.config, conversion.params, provenance)


def random_source(variant: str, seed: int = 0) -> ExportSource:
    """The random weights of `levit_np.create(variant, seed)` (tests and `levit bench`)."""
    from levit_np.model.params import random_params

    cfg = get_config(variant)
    return ExportSource(cfg, random_params(cfg, seed), {"weights_file": f"random (levit_np.create seed {seed})"})


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ExportError("the ONNX export needs the onnx package: pip install 'levit-np[onnx]'") from None
    return onnx


def check_onnx_supports(onnx, opset: int) -> None:
    """The installed onnx package must know `opset` (onnx 1.15 stops at 20)."""
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ExportError(f"opset {opset} is newer than the installed onnx {onnx.__version__} supports "
                          f"(up to {newest}): upgrade onnx or choose a lower --opset")


def onnx_model(source: ExportSource, settings: ExportSettings):
    """The checked onnx ModelProto for `source` at `settings`."""
    from levit_np.export.onnx_graph import build_model, check_exportable

    onnx = _onnx()
    cfg = source.config
    settings.check(cfg.patch_size)
    check_onnx_supports(onnx, settings.opset)
    try:
        check_exportable(cfg)
    except ValueError as e:
        raise ExportError(str(e)) from None
    model = build_model(cfg, fold_model(cfg, source.params), settings.height, settings.width, settings.batch,
                        settings.opset, model_metadata(cfg, settings, source.provenance))
    onnx.checker.check_model(model, full_check=True)
    return model


def onnx_bytes(source: ExportSource, settings: ExportSettings) -> bytes:
    """The serialized model: the bytes `export_onnx` writes."""
    return onnx_model(source, settings).SerializeToString(deterministic=True)


def check_export_output(out: str | os.PathLike) -> Path:
    """Fail before any work when `out` cannot be written or does not end in .onnx."""
    return check_output_path(out, SUFFIXES)


def export_onnx(source: ExportSource, out: str | os.PathLike, settings: ExportSettings) -> int:
    """Write the ONNX file `out` atomically; -> its size in bytes."""
    check_export_output(out)
    data = onnx_bytes(source, settings)
    with atomic_output(out) as tmp:
        tmp.write_bytes(data)
    return len(data)
