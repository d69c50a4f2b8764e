"""Read safetensors files into NumPy arrays, every header entry checked against the file before any tensor is read.

Format: an 8-byte little-endian header length, a JSON header ``{name: {dtype, shape, data_offsets}}`` (plus an
optional ``__metadata__``), then the raw tensor bytes. Read with the ``safetensors`` package; bfloat16, which
NumPy lacks, by hand.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from levit_np.errors import CheckpointError, one_line
from levit_np.weights.checkpoint_io import PathLike, canonical_bool
from levit_np.weights.limits import MAX_SAFETENSORS_HEADER_BYTES, brief, check_shape


def read_safetensors(path: PathLike) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file, in header order."""
    name, size = str(path), os.path.getsize(path)
    try:
        with open(path, "rb") as f:
            header, data_start = _safetensors_header(f, size)
            out: dict[str, np.ndarray] = {}
            for key, info in header.items():
                if info["dtype"] == "BF16":  # NumPy has no bfloat16: decode by hand
                    start, end = info["data_offsets"]
                    f.seek(data_start + start)
                    bits = np.frombuffer(f.read(end - start), dtype="<u2").reshape(info["shape"])
                    out[key] = (bits.astype(np.uint32) << 16).view(np.float32)
                else:
                    out[key] = None  # type: ignore[assignment]  # placeholder keeps header order
    except Exception as exc:
        raise CheckpointError(f"{name} has a corrupt safetensors header ({one_line(exc, 160)})") from None
    try:
        from safetensors import safe_open

        with safe_open(name, framework="np") as st:
            for key, value in out.items():
                if value is None:
                    out[key] = canonical_bool(np.array(st.get_tensor(key), copy=True))
    except Exception as exc:
        raise CheckpointError(f"cannot read safetensors file {name}: {one_line(exc, 160)}") from None
    return out


# The dtypes read here (the safetensors library's NumPy ones, plus BF16 decoded by hand) and their sizes.
_SAFETENSORS_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4,
                         "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}


def _safetensors_header(f, size: int) -> tuple[dict, int]:
    """The tensor entries of a safetensors header and where the data starts; a ValueError for any entry whose
    dtype, shape or offsets do not fit the file (checked here, before the safetensors library allocates)."""
    head = f.read(8)
    if len(head) < 8:
        raise ValueError(f"the file has {size} bytes, fewer than the 8 of the header length")
    (length,) = struct.unpack("<Q", head)
    if length > MAX_SAFETENSORS_HEADER_BYTES:
        raise ValueError(f"it claims a {length}-byte header, more than the {MAX_SAFETENSORS_HEADER_BYTES:,} "
                         "allowed (MAX_SAFETENSORS_HEADER_BYTES)")
    if length > size - 8:
        raise ValueError(f"it claims {length} bytes but the file has {size - 8} after the length")
    header = json.loads(f.read(length))
    if not isinstance(header, dict):
        raise ValueError("it is not a JSON object")
    data_bytes = size - 8 - length
    entries = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if not (isinstance(info, dict) and isinstance(info.get("shape"), list)
                and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2):
            raise ValueError(f"entry {brief(key)} is not {{dtype, shape, data_offsets: [start, end]}}")
        itemsize = _SAFETENSORS_ITEMSIZE.get(info.get("dtype"))  # type: ignore[arg-type]
        if itemsize is None:
            raise ValueError(f"entry {brief(key)} has an unsupported dtype {brief(info.get('dtype'))}")
        count = check_shape(info["shape"], f"entry {brief(key)}")
        start, end = info["data_offsets"]
        if not (type(start) is int and type(end) is int and 0 <= start <= end <= data_bytes):
            raise ValueError(f"entry {brief(key)} has data offsets {brief(info['data_offsets'])} outside the "
                             f"{data_bytes} data bytes")
        if end - start != count * itemsize:
            raise ValueError(f"entry {brief(key)} has {end - start} data bytes, but its shape {brief(info['shape'])} "
                             f"of {info['dtype']} needs {count * itemsize}")
        entries[key] = info
    return entries, 8 + length
