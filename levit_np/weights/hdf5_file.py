"""The levit-np weights file: HDF5 with every tensor under its canonical name, and provenance attributes.

Layout (format version 1):
    /                 attrs: format="levit-np", format_version=1, variant, config (JSON of LevitConfig),
                             source_name, source_sha256, source_layout, converter_version
    /params/<name>    float32 datasets, one per canonical tensor name (see params.py)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from levit_np.model.config import VARIANTS, LevitConfig
from levit_np.errors import LevitError, WeightsFileError, one_line
from levit_np.weights.fileio import atomic_output
from levit_np.weights.limits import MAX_CLASSES
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
    """Read and validate a weights file: format, version, config, and every tensor's presence, shape and dtype
    (all checked before any tensor is read, so a file cannot make us allocate more than its model needs)."""
    with _reading(path) as f:
        info, datasets = _validated(path, f)
        params = _read_datasets(path, datasets)
    return info, params


def read_info(path: str | os.PathLike) -> tuple[WeightsInfo, dict[str, tuple]]:
    """The attributes and {name: (shape, dtype)} of a weights file, without reading the tensors."""
    with _reading(path) as f:
        info, datasets = _validated(path, f)
        shapes = {name: (ds.shape, str(ds.dtype)) for name, ds in datasets.items()}
    return info, shapes


@contextlib.contextmanager
def _reading(path: str | os.PathLike):
    """The open h5py.File; any failure inside HDF5 (h5py raises RuntimeError, OSError, KeyError, ValueError,
    TypeError ... on damaged metadata) becomes a WeightsFileError that says what the file is and what to do."""
    f = _open(path)
    try:
        with f:
            yield f
    except LevitError:
        raise
    except Exception as e:
        raise WeightsFileError(f"{path} is not a readable levit-np weights file: it is corrupt or truncated "
                               f"({type(e).__name__}: {one_line(e, 160)}); convert its checkpoint again with "
                               "`levit convert`") from None


def _validated(path, f) -> tuple[WeightsInfo, dict]:
    """The file's info and {canonical name: h5py DatasetID}, every dataset checked against the config.

    HDF5's low-level calls (h5py.h5l, h5o, h5d): the high-level wrappers cost a millisecond per dataset."""
    import h5py

    info = _read_info(path, f)
    if f.id.links.get_info(b"params").type != h5py.h5l.TYPE_HARD if "params" in f else True:
        raise WeightsFileError(f"{path}: no /params group; not a levit-np weights file")
    group = f["params"]
    if not isinstance(group, h5py.Group):
        raise WeightsFileError(f"{path}: /params is not a group; not a levit-np weights file")
    datasets = {}
    for name in group:
        key = name.encode()
        if group.id.links.get_info(key).type != h5py.h5l.TYPE_HARD:  # a soft link, or an external file
            raise WeightsFileError(f"{path}: /params/{_short(name)} is a link; a weights file holds its tensors")
        ds = h5py.h5o.open(group.id, key)
        plist = ds.get_create_plist() if isinstance(ds, h5py.h5d.DatasetID) else None
        stored_here = plist is not None and plist.get_external_count() == 0 and plist.get_layout() != h5py.h5d.VIRTUAL
        if not stored_here:
            raise WeightsFileError(f"{path}: /params/{_short(name)} is not a dataset stored in the file")
        if ds.dtype != np.float32:
            raise WeightsFileError(f"{path}: /params/{_short(name)} has dtype {_short(str(ds.dtype))}, "
                                   "expected float32")
        datasets[name] = ds
    try:
        check_shapes(info.config, {name: ds.shape for name, ds in datasets.items()})
    except ValueError as e:
        raise WeightsFileError(f"{path}: {e}") from None
    return info, datasets


ALIGN_FLOATS = 16  # each tensor starts a multiple of 16 floats (64 bytes) into the shared buffer


def _read_datasets(path, datasets: dict) -> dict[str, np.ndarray]:
    """{name: float32 values} of validated datasets (shapes already checked against the config), all read into
    one buffer: one large allocation, which NumPy asks the kernel to back with huge pages, instead of ~270 that
    each page-fault their memory in on first touch (LeViT-128S: 31 MB; in a fresh process the read took
    20-32 ms this way against 35-49 ms, 2-core AMD EPYC).

    A dataset stored as one contiguous run of bytes in the file (how `write_weights` stores every tensor: no
    chunks, no filters; HDF5 gives its offset) is read straight from the file into its place in the buffer,
    skipping HDF5's per-dataset read call (~0.15 ms each; `read_weights` of LeViT-128S in a fresh process 0.80x
    its time, ten alternating runs); any other dataset through HDF5. HDF5's offsets are offsets into the file:
    `_open` takes only files that start with HDF5's signature, so none has a user block before it."""
    import h5py

    shapes = {name: ds.shape for name, ds in datasets.items()}
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    starts, end = {}, 0
    for name, size in sizes.items():
        starts[name] = end
        end += -(-size // ALIGN_FLOATS) * ALIGN_FLOATS
    buffer = np.empty(end, np.float32)
    params, contiguous = {}, []
    for name, ds in datasets.items():
        values = buffer[starts[name]:starts[name] + sizes[name]].reshape(shapes[name])
        offset = ds.get_offset()  # None: chunked, compact or not allocated
        if offset is None:
            ds.read(h5py.h5s.ALL, h5py.h5s.ALL, values)
        else:
            contiguous.append((offset, name, values))
        params[name] = values
    with open(path, "rb", buffering=0) as raw:
        for offset, name, values in sorted(contiguous, key=lambda item: item[0]):
            raw.seek(offset)
            if raw.readinto(memoryview(values).cast("B")) != values.nbytes:
                raise WeightsFileError(f"{path}: /params/{_short(name)} runs past the end of the file; it is "
                                       "truncated: convert its checkpoint again with `levit convert`")
    return params


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
    try:
        return h5py.File(path, "r")
    except Exception as e:
        raise WeightsFileError(f"{path} is not a readable levit-np weights file: it is corrupt or truncated "
                               f"({one_line(e, 160)}); convert its checkpoint again with `levit convert`") from None


def _read_info(path, f) -> WeightsInfo:
    attrs = {}
    for key in f.attrs:
        value = _plain(f.attrs[key])
        if not isinstance(value, (str, int, float)):
            raise WeightsFileError(f"{path}: attribute {_short(key)} is a {type(value).__name__}, not a string "
                                   "or number; not a levit-np weights file")
        attrs[key] = value
    if attrs.get("format") != FORMAT:
        raise WeightsFileError(f"{path} is an HDF5 file but not a levit-np weights file (no format='{FORMAT}')")
    version = attrs.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise WeightsFileError(f"{path} has format version {_short(version)}; this levit-np reads version "
                               f"{FORMAT_VERSION}")
    try:
        cfg = LevitConfig.from_dict(json.loads(attrs["config"]))
    except (KeyError, ValueError, TypeError) as e:
        raise WeightsFileError(f"{path}: unreadable config attribute ({one_line(e, 160)})") from None
    known = VARIANTS.get(cfg.name) if isinstance(cfg.name, str) else None
    released = known is not None and type(cfg.num_classes) is int and 1 <= cfg.num_classes <= MAX_CLASSES
    if not released or dataclasses.replace(cfg, num_classes=known.num_classes) != known:
        # only the released variants are written, with any bounded class count (their tensor tables are bounded)
        raise WeightsFileError(f"{path}: its config attribute is not that of a released LeViT variant "
                               f"({', '.join(VARIANTS)}) with 1 to {MAX_CLASSES:,} classes; convert its checkpoint "
                               "again with `levit convert`")
    return WeightsInfo(cfg, version, attrs)


def check_params(cfg: LevitConfig, params: dict[str, np.ndarray]) -> None:
    """Every expected tensor present with its shape, nothing extra; all problems in one ValueError."""
    check_shapes(cfg, {name: np.shape(value) for name, value in params.items()})


def check_shapes(cfg: LevitConfig, shapes: dict[str, tuple]) -> None:
    """As `check_params`, from the tensors' shapes alone."""
    expected = param_shapes(cfg)
    problems = [f"missing {name}" for name in expected if name not in shapes]
    problems += [f"unexpected {_short(name)}" for name in shapes if name not in expected]
    problems += [f"{name} has shape {tuple(shapes[name])}, expected {shape}"
                 for name, shape in expected.items() if name in shapes and tuple(shapes[name]) != shape]
    if problems:
        raise ValueError(f"{len(problems)} problem(s) with the {cfg.name} tensors: " + summarize(problems))


def _short(value) -> str:
    """A name or value from the file, bounded and on one line, for an error message."""
    from levit_np.weights.limits import brief

    return value if isinstance(value, str) and value.isprintable() and len(value) <= 80 else brief(value)


def summarize(problems: list[str], most: int = 12) -> str:
    """Problems joined on one line, the first `most` of them."""
    shown = "; ".join(problems[:most])
    return shown + (f"; ... and {len(problems) - most} more" if len(problems) > most else "")


def _plain(value):
    """An attribute as a Python str/int/float when it is one (h5py gives bytes, NumPy scalars or arrays)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic) and value.dtype.kind in "iuf":
        return value.item()
    return value
