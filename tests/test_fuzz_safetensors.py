"""Fuzzing the safetensors reader: mutated files, and headers with wrong offsets, dtypes and huge shapes,
checked against the values the bytes hold. See tests/fuzzing.py for the property and the budget."""

from __future__ import annotations

import json
import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from safetensors.numpy import load, save

from levit_np.weights.checkpoint_io import read_state_dict
from levit_np.weights.limits import MAX_TENSOR_ELEMENTS

from fuzzing import assert_reader_contract, fuzz_settings, mutated, write_case

TENSORS = {
    "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 7,
    "idx": np.arange(-3, 3, dtype=np.int64),
    "half": np.linspace(-1, 1, 5).astype(np.float16),
    "mask": np.array([True, False, True]),
}
VALID = save(TENSORS, metadata={"format": "np"})
DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "?",
          "BF16": "<u2"}


def _read(tmp_path_factory, data: bytes):
    path = write_case(tmp_path_factory, "case.safetensors", data)
    return assert_reader_contract(lambda: read_state_dict(path), len(data))


@fuzz_settings(ci_examples=250)
@given(data=mutated(VALID))
def test_fuzz_mutated_file(tmp_path_factory, data):
    """Bit flips, overwrites and truncation anywhere: the header length, the JSON, the tensor bytes."""
    result = _read(tmp_path_factory, data)
    if result is not None:  # what was accepted is what the safetensors library itself reads from the bytes
        reference = load(data)
        assert set(result) == set(reference)
        for key, value in result.items():
            np.testing.assert_array_equal(value, reference[key])
            assert value.dtype == reference[key].dtype


_HUGE = [-1, 2**31, 2**32, 2**63, 2**64, 10**20]
_FAULTS = ["dtype", "huge shape", "malformed shape", "negative offset", "past the end", "overlap", "length",
           "header length"]


@st.composite
def headers(draw):
    """(file bytes, {name: expected array or None when the entry is invalid}, header length right?) for one to
    three tensors laid end to end, then (half the time) one fault: a wrong dtype, shape, offset or length."""
    entries, offset = {}, 0
    for name in draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True)):
        dtype = draw(st.sampled_from(list(DTYPES)))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        size = int(np.prod(shape)) * np.dtype(DTYPES[dtype]).itemsize
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    payload = np.random.default_rng(draw(st.integers(0, 2**16))).bytes(offset)
    fault = draw(st.sampled_from(_FAULTS)) if draw(st.booleans()) else None
    entry = entries[draw(st.sampled_from(sorted(entries)))]
    if fault == "dtype":
        entry["dtype"] = draw(st.sampled_from(["F8_E4M3", "Q4", "f32", 7, None, ["F32"]]))
    elif fault == "huge shape":
        entry["shape"] = draw(st.lists(st.sampled_from(_HUGE + [0, 1, 3]), min_size=1, max_size=3))
    elif fault == "malformed shape":
        entry["shape"] = draw(st.sampled_from(["4", [1.5], [True], None, {"n": 1}]))
    elif fault == "negative offset":
        entry["data_offsets"][0] = -draw(st.integers(1, 2**64))
    elif fault == "past the end":
        entry["data_offsets"][1] += draw(st.sampled_from([1, 8, 2**32, 2**63]))
    elif fault == "overlap":
        entry["data_offsets"] = [max(0, entry["data_offsets"][0] - 2), entry["data_offsets"][1] - 2]
    elif fault == "length":
        entry["data_offsets"] = draw(st.sampled_from([[0], [0, 1, 2], "0-4", [0, None]]))
    if draw(st.booleans()):
        entries["__metadata__"] = {"format": "pt"}
    text = json.dumps(entries).encode()
    text += b" " * draw(st.integers(0, 8))
    declared = len(text) + (draw(st.sampled_from([1, -1, 2**40, -len(text)])) if fault == "header length" else 0)
    expected = {k: _value(v, payload) for k, v in entries.items() if k != "__metadata__"}
    return struct.pack("<Q", declared % 2**64) + text + payload, expected, fault != "header length"


def _value(entry: dict, payload: bytes):
    """The array an entry describes, or None when it does not fit the payload or the limits."""
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES or not isinstance(shape, list) \
            or not all(type(n) is int and n >= 0 for n in shape):
        return None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)):
        return None
    start, end = offsets
    if not (0 <= start <= end <= len(payload)):
        return None
    count = int(np.prod(shape, dtype=object))
    if count > MAX_TENSOR_ELEMENTS or end - start != count * np.dtype(DTYPES[dtype]).itemsize:
        return None
    try:
        value = np.frombuffer(payload[start:end], dtype=DTYPES[dtype]).reshape(shape)
    except ValueError:  # an empty shape NumPy cannot represent, e.g. [0, 2**63]
        return None
    if dtype == "BOOL":  # any non-zero byte is True
        return value.view(np.uint8) != 0
    return (value.astype(np.uint32) << 16).view(np.float32) if dtype == "BF16" else value


@fuzz_settings(ci_examples=300)
@given(case=headers())
def test_fuzz_generated_headers(tmp_path_factory, case):
    """Headers with wrong offsets (negative, overlapping, past the end), unknown or mistyped dtypes, huge and
    malformed shapes, wrong header lengths: the declared values when everything fits, else a CheckpointError."""
    data, expected, length_right = case
    result = _read(tmp_path_factory, data)
    if result is not None:
        assert length_right and list(result) == list(expected)
        for name, value in result.items():
            assert expected[name] is not None, f"accepted an invalid entry {name}"
            np.testing.assert_array_equal(value, expected[name])
            assert value.dtype == expected[name].dtype
    elif length_right and all(v is not None for v in expected.values()) and _ordered(data):
        raise AssertionError(f"refused a valid file: {expected}")


def _ordered(data: bytes) -> bool:
    """safetensors also requires the entries to tile the data without gaps or overlap, in some order."""
    (length,) = struct.unpack("<Q", data[:8])
    header = {k: v for k, v in json.loads(data[8:8 + length]).items() if k != "__metadata__"}
    spans = sorted(tuple(v["data_offsets"]) for v in header.values())
    if not spans:
        return len(data) == 8 + length
    return all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[0][0] == 0 \
        and spans[-1][1] == len(data) - 8 - length
