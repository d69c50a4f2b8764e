"""Read PyTorch checkpoints and safetensors files into NumPy arrays, without PyTorch and without running pickled code.

PyTorch format (``torch.save`` since PyTorch 1.6) is a zip archive whose records share one top folder (``archive/``
or the file stem):

- ``<top>/data.pkl``: a pickle (protocol 2) of the saved object. A tensor is pickled as the call
  ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)``
  (offset and strides counted in elements); a ``nn.Parameter`` wraps that in ``torch._utils._rebuild_parameter``.
  ``storage`` is a persistent id ``('storage', torch.FloatStorage, key, location, numel)``. Dtypes newer than the
  typed storages (uint16, ...) use ``_rebuild_tensor_v3(..., dtype)`` over a ``torch.UntypedStorage`` (numel in bytes).
- ``<top>/data/<key>``: the raw bytes of storage ``key``, shared by every tensor that views it.
- ``<top>/byteorder`` (``little`` or ``big``; absent in old files, which are little-endian), ``<top>/version``.

Pickles can call any Python global, so this module unpickles ``data.pkl`` with an allowlist: the few globals a state
dict references are mapped to small functions here that build NumPy arrays; anything else is refused
(docs/security.md lists each entry and why it is safe). The unpickler is Python's pure-Python one: it reads a
string or bytes record only as far as the data goes and keeps its memo in a dict, where the C unpickler first
allocates whatever length or memo index a crafted stream declares (4 GiB from a 9-byte record).
Every size the file claims is checked against `levit_np.weights.limits` before memory is allocated.

safetensors files are read by `levit_np.weights.safetensors_file`.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from levit_np.errors import CheckpointError, one_line
from levit_np.weights.limits import (MAX_CHECKPOINT_BYTES, MAX_PICKLE_BYTES, MAX_TENSOR_ELEMENTS, LimitExceeded,
                                     brief, check_shape)

PathLike = str | os.PathLike[str]

WRAPPER_KEYS = ("model", "state_dict", "model_ema")  # in order of preference
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")  # first object pickled by pre-1.6 torch.save


class _BadRecord(Exception):
    """Raised while unpickling; turned into a CheckpointError that names the file."""


class _Frozen:
    """Objects the unpickler hands out are shared by every load: pickle's BUILD opcode must not change them
    (a crafted file could otherwise alter how *later* files are read). No __dict__, no attribute setting."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise _BadRecord("a record tries to modify a loader object")

    def _init(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)


class _Elem(_Frozen):
    """An element type: a torch storage class (``torch.FloatStorage``) or dtype (``torch.float32``)."""

    __slots__ = ("name", "dtype", "bf16")

    def __init__(self, name: str, dtype: str, bf16: bool = False) -> None:
        self._init(name=name, dtype=np.dtype(dtype), bf16=bf16)

    def __repr__(self) -> str:
        return self.name


class _Allowed(_Frozen):
    """A read-only stand-in for an allowed torch function (functions themselves accept new attributes)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Any) -> None:
        self._init(fn=fn)

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)


class _Storage:
    """The bytes of one ``data/<key>`` record, read once and shared by the tensors viewing it."""

    def __init__(self, key: str, raw: bytes, elem: _Elem) -> None:
        self.key, self.raw, self.elem = key, raw, elem


_STORAGES = {
    name: _Elem(name, dtype, name == "BFloat16Storage")
    for name, dtype in [
        ("FloatStorage", "<f4"), ("HalfStorage", "<f2"), ("BFloat16Storage", "<u2"), ("DoubleStorage", "<f8"),
        ("LongStorage", "<i8"), ("IntStorage", "<i4"), ("ShortStorage", "<i2"), ("CharStorage", "i1"),
        ("ByteStorage", "u1"), ("BoolStorage", "?"), ("UntypedStorage", "u1"),
    ]
}
_DTYPES = {
    name: _Elem(name, dtype, name == "bfloat16")
    for name, dtype in [
        ("float32", "<f4"), ("float", "<f4"), ("float16", "<f2"), ("half", "<f2"), ("bfloat16", "<u2"),
        ("float64", "<f8"), ("double", "<f8"), ("int64", "<i8"), ("long", "<i8"), ("int32", "<i4"), ("int", "<i4"),
        ("int16", "<i2"), ("short", "<i2"), ("int8", "i1"), ("uint8", "u1"), ("bool", "?"),
        ("uint16", "<u2"), ("uint32", "<u4"), ("uint64", "<u8"),
    ]
}
_TENSOR_TYPE = _Frozen()  # stands for the class torch.Tensor in _rebuild_from_type_v2


def _tensor(storage: Any, elem: _Elem, offset: Any, size: Any, stride: Any) -> np.ndarray:
    """A C-contiguous copy of the view ``storage[offset + sum(i_k * stride_k)]`` of shape ``size``."""
    if not isinstance(storage, _Storage) or not isinstance(elem, _Elem):
        raise _BadRecord("a tensor record does not point at a storage")
    tuples = isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
    if not (tuples and all(type(v) is int and v >= 0 for v in (offset, *size, *stride))):
        raise _BadRecord(f"a tensor record has a malformed size {brief(size)} / stride {brief(stride)} / "
                         f"offset {brief(offset)}")
    try:
        check_shape(size, f"a tensor record of shape {brief(size)}")  # a stride-0 view could claim terabytes
    except LimitExceeded as exc:
        raise _BadRecord(str(exc)) from None
    flat = np.frombuffer(storage.raw, dtype=elem.dtype, count=len(storage.raw) // elem.dtype.itemsize)
    if 0 in size:
        out = np.zeros(size, dtype=elem.dtype)
    else:
        needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
        if needed > flat.size:
            raise _BadRecord(f"storage record data/{storage.key} holds {flat.size} {elem} values, shorter than "
                             f"the {needed} a tensor of shape {tuple(size)} at offset {offset} needs")
        strides = tuple(0 if n == 1 else s * elem.dtype.itemsize for n, s in zip(size, stride))
        out = np.lib.stride_tricks.as_strided(flat[offset:], size, strides, writeable=False).copy()
    if elem.bf16:  # bfloat16 is the top half of a float32
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return canonical_bool(out)


def canonical_bool(array: np.ndarray) -> np.ndarray:
    """A bool array whose bytes are all 0 or 1: a file's bool byte 0x5f would be a NumPy bool that is neither
    True nor False (`a == True` is False for it)."""
    return array.view(np.uint8) != 0 if array.dtype == np.bool_ else array


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, *_: Any) -> np.ndarray:
    """Replaces ``torch._utils._rebuild_tensor_v2``: requires_grad, backward hooks and metadata are dropped."""
    return _tensor(storage, getattr(storage, "elem", None), storage_offset, size, stride)


def _rebuild_tensor_v3(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = None,
                       backward_hooks: Any = None, dtype: Any = None, *_: Any) -> np.ndarray:
    """Replaces ``torch._utils._rebuild_tensor_v3``: like v2 over an untyped storage, with the dtype given."""
    return _tensor(storage, dtype, storage_offset, size, stride)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    """Replaces ``torch._utils._rebuild_parameter(_with_state)``: a parameter is just its data here."""
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    """Replaces ``torch._tensor._rebuild_from_type_v2`` for plain tensors (it would also restore a subclass)."""
    known = any(func is _ALLOWED[("torch._utils", name)]
                for name in ("_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter"))
    if not known or new_type is not _TENSOR_TYPE:
        raise _BadRecord("a tensor record uses a tensor subclass, which is not supported")
    return func(*args)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Allowed(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor_v3"): _Allowed(_rebuild_tensor_v3),
    ("torch._utils", "_rebuild_parameter"): _Allowed(_rebuild_parameter),
    ("torch._tensor", "_rebuild_from_type_v2"): _Allowed(_rebuild_from_type_v2),
    ("torch._utils", "_rebuild_parameter_with_state"): _Allowed(_rebuild_parameter),
    ("torch._tensor", "Tensor"): _TENSOR_TYPE,
    ("torch", "Tensor"): _TENSOR_TYPE,
    ("torch.storage", "UntypedStorage"): _STORAGES["UntypedStorage"],
    **{("torch", name): elem for name, elem in _STORAGES.items()},
    **{("torch", name): elem for name, elem in _DTYPES.items()},
}


class RestrictedUnpickler(pickle._Unpickler):  # the pure-Python unpickler: bounded reads (module docstring)
    """Unpickles a ``data.pkl`` allowing only the globals a state dict needs; storages come from the zip."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, filename: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.filename = archive, prefix, filename
        self.storages: dict[str, _Storage] = {}
        self.bytes_read = 0  # storage bytes read so far, at most MAX_CHECKPOINT_BYTES

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            shown = f"{module}.{name}"
            shown = shown if len(shown) <= 100 and shown.isprintable() else brief(shown)[1:-1]
            raise CheckpointError(
                f"refusing to load {self.filename}: it references the Python global '{shown}', "
                "which a weights file never needs (it may be malicious)"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise _BadRecord(f"unknown persistent record {brief(pid)}")
        _, elem, key, _location, numel = pid
        key = key.decode("ascii", "replace") if isinstance(key, bytes) else key
        if not isinstance(elem, _Elem) or not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise _BadRecord(f"malformed storage record {brief(pid)}")
        if not (key.isprintable() and len(key) <= 40):  # torch names storages 0, 1, 2, ...
            raise _BadRecord(f"malformed storage key {brief(key)}")
        if key not in self.storages:
            record = f"{self.prefix}data/{key}"
            try:
                info = self.archive.getinfo(record)
            except KeyError:
                raise _BadRecord(f"the storage record data/{key} is missing") from None
            self._check_size(key, numel, elem, info.file_size)
            _check_within_file(info, self.archive)
            try:
                raw = self.archive.read(info)
            except Exception as exc:
                raise _BadRecord(f"the storage record data/{key} is corrupt ({one_line(exc, 160)})") from None
            nbytes = numel * elem.dtype.itemsize
            if len(raw) < nbytes:
                raise _BadRecord(f"storage record data/{key} is {len(raw)} bytes, shorter than the {nbytes} "
                                 f"its {numel} {elem} values need")
            self.storages[key] = _Storage(key, raw[:nbytes], elem)
        return self.storages[key]

    def _check_size(self, key: str, numel: int, elem: _Elem, record_bytes: int) -> None:
        """Refuse a storage before reading it when it, or the checkpoint so far, is larger than the limits allow
        (the zip's declared size: a deflated record can claim far more than the file holds)."""
        if numel > MAX_TENSOR_ELEMENTS or record_bytes > MAX_TENSOR_ELEMENTS * elem.dtype.itemsize:
            raise _BadRecord(f"the storage record data/{key} claims {max(numel, record_bytes // elem.dtype.itemsize)}"
                             f" {elem} values, more than the {MAX_TENSOR_ELEMENTS:,} a tensor may have "
                             "(MAX_TENSOR_ELEMENTS)")
        self.bytes_read += record_bytes
        if self.bytes_read > MAX_CHECKPOINT_BYTES:
            raise _BadRecord(f"its storage records hold more than {MAX_CHECKPOINT_BYTES >> 30} GiB "
                             "(MAX_CHECKPOINT_BYTES)")


def _check_within_file(info: zipfile.ZipInfo, archive: zipfile.ZipFile) -> None:
    """A record's compressed bytes must lie inside the archive: zipfile reads a record by its declared
    compressed size, and Python's file read allocates that many bytes before reading (a 2 kB file could claim
    gigabytes)."""
    size = archive.fp.seek(0, os.SEEK_END) if archive.fp is not None else 0
    if info.header_offset + info.compress_size > size:
        raise _BadRecord(f"record {brief(info.filename)} claims {info.compress_size} bytes at offset "
                         f"{info.header_offset}, past the end of the {size}-byte file")


def sniff_format(path: PathLike) -> str:
    """A readable name of the checkpoint format, judged by content: 'PyTorch zip' or 'safetensors'."""
    return {"zip": "PyTorch zip", "safetensors": "safetensors"}[_sniff(path)]


def _sniff(path: PathLike) -> str:
    """'zip' or 'safetensors' from the file's first bytes; a CheckpointError for anything else."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"no such checkpoint file: {p}")
    if p.is_dir():
        raise CheckpointError(f"{p} is a directory, not a checkpoint file")
    try:
        with open(p, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise CheckpointError(f"cannot read {p}: {one_line(exc, 160)}") from None
    if not head:
        raise CheckpointError(f"{p} is empty (0 bytes), not a checkpoint")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[8:9] == b"{":
        return "safetensors"
    if _LEGACY_MAGIC in head[:32] or head[257:262] == b"ustar":
        raise CheckpointError(f"{p}: legacy PyTorch format (before 1.6) is not supported: "
                              "re-save it with torch.save in a current PyTorch")
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        raise CheckpointError(f"{p} is a plain Python pickle, not a PyTorch checkpoint (a zip archive) "
                              "or a safetensors file; pickles are not loaded because they can run code")
    raise CheckpointError(f"{p} is neither a PyTorch checkpoint (zip) nor a safetensors file "
                          f"(it starts with bytes {head[:8].hex(' ')})")


def load_torch_zip(path: PathLike) -> Any:
    """The object ``torch.save`` wrote to ``path``, with every tensor as a C-contiguous NumPy array."""
    name = str(path)
    if _sniff(path) != "zip":
        raise CheckpointError(f"{name} is not a PyTorch zip checkpoint")
    try:
        archive = zipfile.ZipFile(path)
    except Exception as exc:
        raise CheckpointError(f"{name} is a truncated or corrupt zip archive ({one_line(exc, 160)})") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pickles:
            raise CheckpointError(f"{name} is a zip archive but not a PyTorch checkpoint: it has no <folder>/data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        try:
            for record in archive.infolist():
                _check_within_file(record, archive)
        except _BadRecord as exc:
            raise CheckpointError(f"{name} is a truncated or corrupt zip archive ({exc})") from None
        if archive.getinfo(pickles[0]).file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{name}: its data.pkl claims {archive.getinfo(pickles[0]).file_size} bytes, more "
                                  f"than the {MAX_PICKLE_BYTES >> 20} MiB a checkpoint's pickle may have "
                                  "(MAX_PICKLE_BYTES)")
        try:
            has_byteorder = prefix + "byteorder" in archive.namelist()  # older files lack it: little-endian
            if has_byteorder and archive.getinfo(prefix + "byteorder").file_size > 64:
                raise CheckpointError(f"{name} has a corrupt byteorder record (larger than 64 bytes)")
            byteorder = archive.read(prefix + "byteorder").strip() if has_byteorder else b"little"
            data = archive.read(pickles[0])
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"{name} is a truncated or corrupt zip archive ({one_line(exc, 160)})") from None
        if byteorder != b"little":
            raise CheckpointError(f"{name} stores big-endian data (byteorder {brief(byteorder[:16])}); "
                                  "only little-endian checkpoints are supported")
        try:
            return RestrictedUnpickler(data, archive, prefix, name).load()
        except CheckpointError:
            raise
        except _BadRecord as exc:
            raise CheckpointError(f"cannot read {name}: {exc}") from None
        except Exception as exc:  # UnpicklingError, EOFError, TypeError from a mangled call, MemoryError, ...
            detail = f"{type(exc).__name__}: {one_line(exc, 160)}"
            raise CheckpointError(f"{name} has a corrupt data.pkl ({detail})") from None


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())


def read_state_dict(path: PathLike) -> dict[str, np.ndarray]:
    """A flat ``{name: array}`` from a PyTorch checkpoint or safetensors file (format detected from the content).

    A checkpoint that wraps its state dict (``{'model': ..., 'epoch': ..., 'optimizer': ...}``) is unwrapped at
    ``'model'``, else ``'state_dict'``, else ``'model_ema'``; the other top-level entries are then ignored.
    """
    if _sniff(path) == "safetensors":
        from levit_np.weights.safetensors_file import read_safetensors

        return read_safetensors(path)
    obj = load_torch_zip(path)
    if _is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if key in obj and _is_state_dict(obj[key]):
                return dict(obj[key])
        keys = ", ".join(repr(k) for k in list(obj)[:8])
        raise CheckpointError(f"{path} holds no state dict: its top-level dict has keys {keys} and none of "
                              f"{', '.join(WRAPPER_KEYS)} maps names to tensors")
    raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict (a dict of tensors)")
