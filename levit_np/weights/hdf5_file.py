"""The levit-np weights file: HDF5 with every tensor under its canonical name, and provenance attributes.

Layout (format version 1):
    /                 attrs: format="levit-np", format_version=1, variant, config (JSON of LevitConfig),
                             source_name, source_sha256, source_layout, converter_version
    /params/<name>    float32 datasets, one per canonical tensor name (see params.py)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from levit_np.model.config import LevitConfig
from levit_np.errors import WeightsFileError, one_line
from levit_np.weights.fileio import atomic_output
from levit_np.model.params import param_shapes

FORMAT = "levit-np"
FORMAT_VERSION = 1


@dataclass
class WeightsInfo:
    """What a weights file says about itself."""

    config: LevitConfig
    format_version: int
    attrs: dict = field(default_factory=dict)


def write_weights(path: str | os.PathLike, cfg: LevitConfig, params: dict[str, np.ndarray], **provenance) -> None:
    """Write `params` (canonical names) and provenance attributes; atomic (temp file, then rename)."""
    import h5py

    from levit_np.version import __version__

    check_params(cfg, params)
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["variant"] = cfg.name
            f.attrs["config"] = json.dumps(cfg.to_dict())
            f.attrs["converter_version"] = __version__
            for key, value in provenance.items():
                f.attrs[key] = value
            group = f.create_group("params")
            for name in param_shapes(cfg):
                group.create_dataset(name, data=np.asarray(params[name], dtype=np.float32))


def read_weights(path: str | os.PathLike) -> tuple[WeightsInfo, dict[str, np.ndarray]]:
    """Read and validate a weights file: format, version, config, and every tensor's presence and shape."""
    try:
        with _open(path) as f:
            info = _read_info(path, f)
            group = f.get("params")
            if group is None:
                raise WeightsFileError(f"{path}: no /params group; not a levit-np weights file")
            params = {name: np.asarray(group[name][()]) for name in group}
    except (OSError, KeyError) as e:
        raise WeightsFileError(f"cannot read weights file {path}: {one_line(e)}") from None
    try:
        check_params(info.config, params)
    except ValueError as e:
        raise WeightsFileError(f"{path}: {e}") from None
    return info, params


def read_info(path: str | os.PathLike) -> tuple[WeightsInfo, dict[str, tuple]]:
    """The attributes and {name: (shape, dtype)} of a weights file, without reading the tensors."""
    try:
        with _open(path) as f:
            info = _read_info(path, f)
            group = f.get("params", {})
            shapes = {name: (group[name].shape, str(group[name].dtype)) for name in group}
    except OSError as e:
        raise WeightsFileError(f"cannot read weights file {path}: {one_line(e)}") from None
    try:
        check_params(info.config, {name: np.empty(shape, np.uint8) for name, (shape, _) in shapes.items()})
    except ValueError as e:
        raise WeightsFileError(f"{path}: {e}") from None
    return info, shapes


def _open(path: str | os.PathLike):
    """h5py.File for reading, after plain checks that give clearer messages than HDF5's own."""
    import h5py

    from levit_np.weights.fileio import is_hdf5

    if not os.path.exists(path):
        raise WeightsFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise WeightsFileError(f"{path} is a directory, not a weights file")
    if not is_hdf5(path):
        raise WeightsFileError(f"{path} is not an HDF5 file (expected a .h5 written by `levit convert`)")
    return h5py.File(path, "r")


def _read_info(path, f) -> WeightsInfo:
    attrs = {key: _plain(value) for key, value in f.attrs.items()}
    if attrs.get("format") != FORMAT:
        raise WeightsFileError(f"{path} is an HDF5 file but not a levit-np weights file (no format='{FORMAT}')")
    version = int(attrs.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise WeightsFileError(f"{path} has format version {version}; this levit-np reads version {FORMAT_VERSION}")
    try:
        cfg = LevitConfig.from_dict(json.loads(attrs["config"]))
    except (KeyError, ValueError, TypeError) as e:
        raise WeightsFileError(f"{path}: unreadable config attribute ({e})") from None
    return WeightsInfo(cfg, version, attrs)


def check_params(cfg: LevitConfig, params: dict[str, np.ndarray]) -> None:
    """Every expected tensor present with its shape, nothing extra; all problems in one ValueError."""
    expected = param_shapes(cfg)
    problems = [f"missing {name}" for name in expected if name not in params]
    problems += [f"unexpected {name}" for name in params if name not in expected]
    problems += [f"{name} has shape {tuple(params[name].shape)}, expected {shape}"
                 for name, shape in expected.items() if name in params and tuple(params[name].shape) != shape]
    if problems:
        raise ValueError(f"{len(problems)} problem(s) with the {cfg.name} tensors: " + summarize(problems))


def summarize(problems: list[str], most: int = 12) -> str:
    """Problems joined on one line, the first `most` of them."""
    shown = "; ".join(problems[:most])
    return shown + (f"; ... and {len(problems) - most} more" if len(problems) > most else "")


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
