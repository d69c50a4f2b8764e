"""Fuzzing the PyTorch zip + pickle reader (levit_np.weights.checkpoint_io): mutated archives, mutated and
generated pickle opcode streams, tensor records with overflowing sizes, strides and offsets, and storage
records shorter or longer than declared. See tests/fuzzing.py for the property and the budget."""

from __future__ import annotations

import io
import itertools
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from levit_np.errors import CheckpointError
from levit_np.weights import checkpoint_io
from levit_np.weights.checkpoint_io import read_state_dict
from levit_np.weights.limits import MAX_TENSOR_ELEMENTS

from fuzzing import assert_reader_contract, fuzz_settings, mutated, write_case
from test_checkpoint_io import HAND_EXPECTED, _dict_pickle, _g, _hand_checkpoint, _i, _s, _tensor, _tup, _write_zip

HAND_ZIP = _hand_checkpoint(io.BytesIO()).getvalue()
HAND_PKL = zipfile.ZipFile(io.BytesIO(HAND_ZIP)).read("archive/data.pkl")
STORAGE = np.arange(24, dtype="<f4") - 7.5  # data/0 of the generated tensor records


def _loader_objects_unchanged() -> None:
    """A crafted file must not alter how later files load (pickle's BUILD on a shared loader object)."""
    assert checkpoint_io._STORAGES["FloatStorage"].dtype == np.float32
    assert not checkpoint_io._STORAGES["FloatStorage"].bf16 and checkpoint_io._DTYPES["bfloat16"].bf16


def _read(tmp_path_factory, data: bytes, name: str = "case.pth"):
    path = write_case(tmp_path_factory, name, data)
    result = assert_reader_contract(lambda: read_state_dict(path), len(data))
    _loader_objects_unchanged()
    if result is not None:
        assert all(isinstance(v, np.ndarray) and v.flags.c_contiguous for v in result.values())
    return result


def _zip(pkl: bytes, **records: bytes) -> bytes:
    contents = {"data.pkl": pkl, "byteorder": b"little", **{k.replace("__", "/"): v for k, v in records.items()}}
    return _write_zip(io.BytesIO(), contents).getvalue()


@fuzz_settings(ci_examples=250)
@given(data=mutated(HAND_ZIP))
def test_fuzz_mutated_archive(tmp_path_factory, data):
    """Bit flips, overwrites and truncation anywhere in a hand-built checkpoint (zip headers, CRCs, records)."""
    result = _read(tmp_path_factory, data)
    if result is not None and data == HAND_ZIP:
        assert list(result) == list(HAND_EXPECTED)


@fuzz_settings(ci_examples=250)
@given(pkl=mutated(HAND_PKL, most=4))
def test_fuzz_mutated_pickle(tmp_path_factory, pkl):
    """The same edits inside data.pkl of an otherwise valid archive (the zip's CRCs match the mangled pickle)."""
    records = {f"data__{k}": v for k, v in _storages().items()}
    _read(tmp_path_factory, _zip(pkl, **records))


def _storages() -> dict[str, bytes]:
    hand = zipfile.ZipFile(io.BytesIO(HAND_ZIP))
    return {n.split("/")[-1]: hand.read(n) for n in hand.namelist() if "/data/" in n}


# --- generated opcode streams ------------------------------------------------------------------------------------

_NAMES = [("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor_v3"),
          ("torch._utils", "_rebuild_parameter"), ("torch._tensor", "_rebuild_from_type_v2"),
          ("collections", "OrderedDict"), ("torch", "FloatStorage"), ("torch", "BFloat16Storage"),
          ("torch", "float32"), ("torch", "Tensor"), ("torch.storage", "UntypedStorage"),
          ("os", "system"), ("builtins", "getattr"), ("builtins", "eval"), ("evil._utils", "_rebuild_tensor_v2")]


def _opcode(draw) -> bytes:
    """One protocol-2..4 opcode with a plausible (or deliberately wrong) argument."""
    big = st.sampled_from([0, 1, 2, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1])
    kind = draw(st.integers(0, 20))
    if kind == 0:
        return draw(st.sampled_from([b"(", b"}", b"]", b")", b"t", b"\x85", b"\x86", b"\x87", b"s", b"u", b"a",
                                     b"e", b"R", b"b", b"Q", b"\x81", b"N", b"\x88", b"\x89", b"0", b"1", b"2",
                                     b"\x94", b".", b"\x93", b"\x92", b"\x90", b"\x91"]))
    if kind in (1, 2):
        return _i(draw(st.integers(-2**31, 2**31 - 1)))
    if kind == 3:
        return b"K" + bytes([draw(st.integers(0, 255))])
    if kind in (4, 5):
        return _s(draw(st.sampled_from(["storage", "0", "1", "cpu", "w", "model", "x" * 50])))
    if kind == 6:  # a string or bytes record whose declared length may exceed the data
        op = draw(st.sampled_from([b"X", b"B", b"T", b"\x8d", b"\x8e"]))
        fmt = "<Q" if op in (b"\x8d", b"\x8e") else "<I"
        return op + struct.pack(fmt, draw(big)) + draw(st.binary(max_size=8))
    if kind == 7:  # memo put / get, with huge indexes
        op = draw(st.sampled_from([b"q", b"h", b"r", b"j"]))
        index = draw(big)
        return op + (bytes([index & 255]) if op in (b"q", b"h") else struct.pack("<I", index))
    if kind == 8:
        return b"\x8a" + bytes([draw(st.integers(0, 9))]) + draw(st.binary(max_size=9))  # LONG1
    if kind == 9:
        return b"G" + struct.pack(">d", draw(st.floats(allow_nan=True)))
    if kind in (10, 11, 12):
        module, name = draw(st.sampled_from(_NAMES))
        return _g(module, name)
    if kind == 13:
        return b"\x95" + struct.pack("<Q", draw(big))  # FRAME
    if kind == 14:  # a whole valid tensor record, so that streams build tensors now and then
        size = draw(st.lists(st.integers(0, 3), max_size=3))
        stride = [int(np.prod(size[i + 1:])) for i in range(len(size))]
        return _tensor("FloatStorage", "0", 24, draw(st.integers(0, 4)), tuple(size), tuple(stride))
    return draw(st.sampled_from([b"(", b"t", b"R", b"s", b"u", b"Q", b"}", b")"]))


@st.composite
def opcode_streams(draw) -> bytes:
    proto = draw(st.sampled_from([b"\x80\x02", b"\x80\x04", b"\x80\x05", b""]))
    body = b"".join(_opcode(draw) for _ in range(draw(st.integers(1, 40))))
    return proto + body + draw(st.sampled_from([b".", b""]))


@fuzz_settings(ci_examples=300)
@given(pkl=opcode_streams())
def test_fuzz_pickle_opcode_streams(tmp_path_factory, pkl):
    """Random opcode sequences: stack and memo misuse, huge declared lengths and memo indexes, forbidden
    globals, BUILD on loader objects, tensors in odd places. Only arrays or CheckpointErrors come out."""
    path = write_case(tmp_path_factory, "stream.pth", _zip(pkl, data__0=STORAGE.tobytes()))
    assert_reader_contract(lambda: checkpoint_io.load_torch_zip(path), len(pkl))
    _loader_objects_unchanged()


# --- tensor records: sizes, strides, offsets and declared storage lengths ----------------------------------------

_DIM = st.one_of(st.integers(0, 5), st.sampled_from([2**31, 2**32, 2**62, 2**63, 2**64, 10**30, -1]))
_STEP = st.one_of(st.integers(0, 7), st.sampled_from([2**31, 2**61, 2**63, 10**30, -1]))


def _expected(offset: int, size: tuple, stride: tuple, numel: int, record: np.ndarray):
    """The tensor by direct indexing (independent of the reader's as_strided), or None when it is invalid."""
    if any(v < 0 for v in (offset, numel, *size, *stride)) or numel * 4 > record.nbytes:
        return None
    if any(n >= 2**63 for n in size):  # not a NumPy (nor a torch) shape, even when empty
        return None
    if int(np.prod([float(n) for n in size])) > MAX_TENSOR_ELEMENTS:  # float: no overflow on huge dims
        return None
    values = record[:numel]
    try:
        out = np.zeros(size, np.float32)
    except ValueError:  # (0, 2**31, 2**31): NumPy refuses the shape even though it is empty
        return None
    if out.size == 0:  # (itertools.product would first list every range, 2**31 of them)
        return out
    for index in itertools.product(*(range(n) for n in size)):
        at = offset + sum(i * s for i, s in zip(index, stride))
        if at >= values.size:
            return None
        out[index] = values[at]
    return out


@fuzz_settings(ci_examples=300)
@given(offset=_STEP, size=st.lists(_DIM, max_size=4), stride=st.lists(_STEP, max_size=4),
       numel=st.one_of(st.integers(0, 30), st.sampled_from([2**31, 2**40, 2**63, -1])),
       record_len=st.integers(0, 30))
def test_fuzz_tensor_records(tmp_path_factory, offset, size, stride, numel, record_len):
    """A tensor record with any size, stride, offset and declared storage length, over a storage record of
    `record_len` floats: the right values when the view fits the storage and the limits, else a
    CheckpointError; never a MemoryError, an OverflowError or a view past the end."""
    stride = (stride + [1] * len(size))[: len(size)]
    record = STORAGE[:record_len]
    pkl = _dict_pickle({"t": _tensor_record(numel, offset, tuple(size), tuple(stride))})
    result = _read(tmp_path_factory, _zip(pkl, data__0=record.tobytes()))
    want = None if len(size) != len(stride) else _expected(offset, tuple(size), tuple(stride), numel, record)
    if want is None:
        assert result is None, f"accepted an invalid record: {result}"
    else:
        assert result is not None, "refused a valid record"
        np.testing.assert_array_equal(result["t"], want)


def _tensor_record(numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    """As test_checkpoint_io._tensor, with arbitrary-precision ints (BININT holds only 32 bits)."""
    def integer(n: int) -> bytes:
        if -2**31 <= n < 2**31:
            return _i(n)
        raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
        return b"\x8a" + bytes([len(raw)]) + raw  # LONG1

    storage = _tup(_s("storage"), _g("torch", "FloatStorage"), _s("0"), _s("cpu"), integer(numel)) + b"Q"
    hooks = _g("collections", "OrderedDict") + b")R"
    args = [storage, integer(offset), _tup(*map(integer, size)), _tup(*map(integer, stride)), b"\x89", hooks]
    return _g("torch._utils", "_rebuild_tensor_v2") + _tup(*args) + b"R"


@fuzz_settings(ci_examples=150)
@given(declared=st.integers(0, 40), stored=st.integers(0, 40), deflate=st.booleans())
def test_fuzz_storage_record_lengths(tmp_path_factory, declared, stored, deflate):
    """A storage record shorter or longer than its declared numel (stored or deflated): a shorter one is
    refused, a longer one is read up to its declared length."""
    pkl = _dict_pickle({"t": _tensor("FloatStorage", "0", declared, 0, (declared,), (1,))})
    raw = (np.arange(stored, dtype="<f4") * 0.5).tobytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pkl)
        archive.writestr("archive/data/0", raw)
    result = _read(tmp_path_factory, buf.getvalue())
    if stored >= declared:
        np.testing.assert_array_equal(result["t"], np.arange(declared, dtype="<f4") * 0.5)
    else:
        assert result is None


def test_bool_bytes_read_as_true_or_false(tmp_path):
    """Found by fuzzing the safetensors reader: a bool byte other than 0/1 gave a NumPy bool that is neither
    True nor False; both readers now read any non-zero byte as True."""
    pkl = _dict_pickle({"m": _tensor("BoolStorage", "0", 3, 0, (3,), (1,))})
    path = tmp_path / "bools.pth"
    path.write_bytes(_zip(pkl, data__0=b"\x00\x01\x5f"))
    mask = read_state_dict(path)["m"]
    np.testing.assert_array_equal(mask == True, [False, True, True])  # noqa: E712 (the point of the test)
    assert mask.view(np.uint8).tolist() == [0, 1, 1]


def test_record_claiming_more_than_the_file_is_refused_before_reading(tmp_path):
    """Found by the long fuzz run: a 2 kB checkpoint whose data.pkl record claims 60 MiB of compressed bytes
    made the reader allocate 60 MiB (Python's file read allocates the requested size first); records must
    now lie inside the file."""
    data = bytearray(HAND_ZIP)
    central = data.find(b"PK\x01\x02")
    data[central + 20:central + 24] = struct.pack("<I", 60 << 20)  # compressed size, central directory
    data[18:22] = struct.pack("<I", 60 << 20)  # and the local header
    path = tmp_path / "claims.pth"
    path.write_bytes(bytes(data))
    assert assert_reader_contract(lambda: read_state_dict(path), len(data), memory_factor=1) is None
    with pytest.raises(CheckpointError, match="past the end of the 1969-byte file"):
        read_state_dict(path)
