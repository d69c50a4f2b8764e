"""Tests for levit_np.weights.checkpoint_io: PyTorch zip checkpoints and safetensors read without torch or unpickling code."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from levit_np.weights.checkpoint_io import load_torch_zip, read_state_dict
from levit_np.errors import CheckpointError

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OFFICIAL = SHARED / "fixtures" / "official" / "LeViT_128S_random.pth"


def _official() -> Path:
    if not OFFICIAL.is_file():
        pytest.skip(f"shared fixture {OFFICIAL} is absent (the ../shared folder next to the repo is not checked out)")
    return OFFICIAL


def _raises(path: Path, *fragments: str, func=read_state_dict) -> str:
    """Assert that reading ``path`` raises a one-line CheckpointError containing every fragment; return it."""
    with pytest.raises(CheckpointError) as info:
        func(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- a tiny hand assembler for torch-style data.pkl (protocol 2 opcodes), so most tests need no torch -----------

def _g(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()  # GLOBAL


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def _i(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)  # BININT


def _tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


def _tensor(storage_class: str, key: str, numel: int, offset: int, size: tuple, stride: tuple,
            rebuild: str = "_rebuild_tensor_v2", dtype: str | None = None) -> bytes:
    storage = _tup(_s("storage"), _g("torch", storage_class), _s(key), _s("cpu"), _i(numel)) + b"Q"  # BINPERSID
    hooks = _g("collections", "OrderedDict") + b")R"  # OrderedDict()
    args = [storage, _i(offset), _tup(*map(_i, size)), _tup(*map(_i, stride)), b"\x89", hooks]  # \x89: False
    if dtype is not None:
        args.append(_g("torch", dtype))
    return _g("torch._utils", rebuild) + _tup(*args) + b"R"  # REDUCE


def _dict_pickle(entries: dict[str, bytes]) -> bytes:
    return b"\x80\x02}(" + b"".join(_s(k) + v for k, v in entries.items()) + b"u."  # dict, SETITEMS, STOP


def _write_zip(path: Path, records: dict[str, bytes], top: str = "archive") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in records.items():
            archive.writestr(f"{top}/{name}", data)
    return path


BASE = np.arange(6, dtype="<f4") * 1.5 - 2  # storage "0"
BF16_AS_F32 = np.array([1.0, -2.5, 0.15625, 384.0], dtype=np.float32)  # exactly representable in bfloat16


def _hand_checkpoint(path: Path, top: str = "archive", pkl: bytes | None = None, **records: bytes) -> Path:
    entries = {
        "matrix": _tensor("FloatStorage", "0", 6, 0, (2, 3), (3, 1)),
        "transposed": _tensor("FloatStorage", "0", 6, 0, (3, 2), (1, 3)),
        "tail": _tensor("FloatStorage", "0", 6, 2, (3,), (1,)),
        "bf16": _tensor("BFloat16Storage", "1", 4, 0, (2, 2), (2, 1)),
        "num_batches_tracked": _tensor("LongStorage", "2", 1, 0, (), ()),
        "u16": _tensor("UntypedStorage", "3", 6, 0, (3,), (1,), rebuild="_rebuild_tensor_v3", dtype="uint16"),
        "param": _g("torch._utils", "_rebuild_parameter")
        + _tup(_tensor("FloatStorage", "0", 6, 4, (2,), (1,)), b"\x88", _g("collections", "OrderedDict") + b")R")
        + b"R",
    }
    contents = {
        "data.pkl": _dict_pickle(entries) if pkl is None else pkl,
        "byteorder": b"little",
        "data/0": BASE.tobytes(),
        "data/1": (BF16_AS_F32.view(np.uint32) >> 16).astype("<u2").tobytes(),
        "data/2": np.array([7], "<i8").tobytes(),
        "data/3": np.array([1, 65535, 300], "<u2").tobytes(),
        "version": b"3\n",
    }
    contents.update({k.replace("__", "/"): v for k, v in records.items()})
    return _write_zip(path, {k: v for k, v in contents.items() if v is not None}, top)


HAND_EXPECTED = {
    "matrix": BASE.reshape(2, 3),
    "transposed": BASE.reshape(2, 3).T,
    "tail": BASE[2:5],
    "bf16": BF16_AS_F32.reshape(2, 2),
    "num_batches_tracked": np.array(7, np.int64),
    "u16": np.array([1, 65535, 300], np.uint16),
    "param": BASE[4:6],
}


def _assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(got) == list(expected)
    for key, want in expected.items():
        assert got[key].dtype == want.dtype, key
        assert got[key].shape == want.shape, key
        assert got[key].flags.c_contiguous, key
        np.testing.assert_array_equal(got[key], want, err_msg=key)


# --- the official-format fixture ---------------------------------------------------------------------------------

def test_official_fixture():
    sd = read_state_dict(_official())
    assert len(sd) == 336
    assert next(iter(sd)) == "patch_embed.0.c.weight"
    assert sd["patch_embed.0.c.weight"].shape == (16, 3, 3, 3)
    assert sd["patch_embed.0.c.weight"].dtype == np.float32
    assert sd["blocks.0.m.attention_bias_idxs"].shape == (196, 196)
    assert sd["blocks.0.m.attention_bias_idxs"].dtype == np.int64
    counters = [k for k in sd if k.endswith("num_batches_tracked")]
    assert counters and all(sd[k].shape == () and sd[k].dtype == np.int64 for k in counters)
    assert all(v.flags.c_contiguous for v in sd.values())
    assert all(np.isfinite(v).all() for v in sd.values() if v.dtype == np.float32)
    assert list(load_torch_zip(_official())) == ["model"]


def test_official_fixture_matches_torch_load():
    torch = pytest.importorskip("torch")
    reference = torch.load(_official(), map_location="cpu", weights_only=True)["model"]
    _assert_same(read_state_dict(_official()), {k: v.numpy() for k, v in reference.items()})


def test_truncated_official_fixture(tmp_path):
    data = _official().read_bytes()
    path = tmp_path / "half.pth"
    path.write_bytes(data[: len(data) // 2])
    _raises(path, "half.pth", "truncated or corrupt zip")


def test_short_storage_record_in_official_fixture(tmp_path):
    path = tmp_path / "short.pth"
    with zipfile.ZipFile(_official()) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data[:-4] if info.filename.endswith("/data/0") else data)
    _raises(path, "short.pth", "data/0", "shorter than")


# --- hand-built checkpoints (no torch needed) --------------------------------------------------------------------

def test_hand_built_checkpoint(tmp_path):
    # Odd file name and top folder: the format is found from the content.
    path = _hand_checkpoint(tmp_path / "weights.bin", top="something_else")
    got = read_state_dict(path)
    _assert_same(got, HAND_EXPECTED)
    got["matrix"][0, 0] = 99  # copies, not views of one shared buffer
    assert got["tail"][0] == BASE[2] and got["transposed"][0, 0] == BASE[0]


def test_no_torch_import(tmp_path):
    path = _hand_checkpoint(tmp_path / "ckpt.pth")
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
        "from levit_np.weights.checkpoint_io import read_state_dict\n"
        f"sd = read_state_dict({str(path)!r})\n"
        "assert sd['num_batches_tracked'] == 7 and 'torch' in sys.modules and sys.modules['torch'] is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_short_storage_record_for_tensor(tmp_path):
    # The storage record claims 6 floats and has them, but a tensor reaches past its end.
    pkl = _dict_pickle({"w": _tensor("FloatStorage", "0", 6, 2, (2, 3), (3, 1))})
    _raises(_hand_checkpoint(tmp_path / "past_end.pth", pkl=pkl), "past_end.pth", "data/0", "shorter than")
    # The record holds fewer bytes than the numel the pickle declares.
    pkl = _dict_pickle({"w": _tensor("FloatStorage", "0", 60, 0, (6,), (1,))})
    _raises(_hand_checkpoint(tmp_path / "short.pth", pkl=pkl), "data/0", "shorter than")


def test_missing_storage_record(tmp_path):
    _raises(_hand_checkpoint(tmp_path / "gone.pth", data__2=None), "gone.pth", "data/2", "missing")


def test_corrupt_zip_records(tmp_path):
    """A flipped byte inside a record fails the zip's CRC check."""
    for record, fragment in [("data/0", "data/0 is corrupt"), ("data.pkl", "truncated or corrupt zip")]:
        path = _hand_checkpoint(tmp_path / "crc.pth")
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(f"archive/{record}")
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)  # after the local header
        data[start + 3] ^= 0xFF
        path.write_bytes(bytes(data))
        _raises(path, "crc.pth", fragment)


def test_zip_without_data_pkl(tmp_path):
    path = _write_zip(tmp_path / "other.zip", {"readme.txt": b"hello"})
    _raises(path, "other.zip", "data.pkl")
    np.savez(tmp_path / "arrays.npz", a=np.ones(3))  # an .npz is a zip too
    _raises(tmp_path / "arrays.npz", "data.pkl")


def test_big_endian(tmp_path):
    _raises(_hand_checkpoint(tmp_path / "be.pth", byteorder=b"big"), "be.pth", "big-endian")


def test_corrupt_data_pkl(tmp_path):
    _raises(_hand_checkpoint(tmp_path / "junk.pth", pkl=b"\x80\x02garbage"), "junk.pth", "corrupt data.pkl")
    _raises(_hand_checkpoint(tmp_path / "nul.pth", pkl=b""), "corrupt data.pkl")
    bad_size = _dict_pickle({"w": _tensor("FloatStorage", "0", 6, 0, (2, -3), (3, 1))})
    _raises(_hand_checkpoint(tmp_path / "neg.pth", pkl=bad_size), "malformed size")
    bad_pid = b"\x80\x02}(" + _s("w") + _tup(_s("module"), _s("x")) + b"Qu."
    _raises(_hand_checkpoint(tmp_path / "pid.pth", pkl=bad_pid), "persistent record")


def test_mangled_data_pkl_only_raises_checkpoint_error(tmp_path):
    """Every truncation and many single-byte changes of a valid data.pkl give a result or a CheckpointError."""
    good = _dict_pickle({
        "a": _tensor("FloatStorage", "0", 6, 1, (2, 2), (3, 1)),
        "b": _tensor("LongStorage", "2", 1, 0, (), ()),
    })
    path = tmp_path / "mangled.pth"
    variants = [good[:cut] for cut in range(0, len(good), 3)]
    variants += [good[:i] + bytes([b]) + good[i + 1:] for i in range(len(good)) for b in (0, 0xFF, good[i] ^ 1)]
    for data in variants:
        _hand_checkpoint(path, pkl=data)
        try:
            result = read_state_dict(path)
        except CheckpointError as exc:
            assert "\n" not in str(exc)
        else:
            assert all(isinstance(v, np.ndarray) for v in result.values())


def test_state_dict_selection(tmp_path):
    t = _tensor("FloatStorage", "0", 6, 0, (6,), (1,))
    wrapped = b"\x80\x02}(" + _s("epoch") + _i(3) + _s("model") + b"}(" + _s("w") + t + b"u" + b"u."
    assert list(read_state_dict(_hand_checkpoint(tmp_path / "wrapped.pth", pkl=wrapped))) == ["w"]
    both = (b"\x80\x02}(" + _s("model_ema") + b"}(" + _s("ema") + t + b"u"
            + _s("state_dict") + b"}(" + _s("sd") + t + b"u" + b"u.")
    assert list(read_state_dict(_hand_checkpoint(tmp_path / "both.pth", pkl=both))) == ["sd"]
    no_sd = b"\x80\x02}(" + _s("epoch") + _i(3) + _s("w") + t + b"u."
    _raises(_hand_checkpoint(tmp_path / "mixed.pth", pkl=no_sd), "mixed.pth", "no state dict", "'epoch'")
    a_list = b"\x80\x02](" + t + b"e."  # a list of tensors: fine for load_torch_zip, not a state dict
    path = _hand_checkpoint(tmp_path / "list.pth", pkl=a_list)
    np.testing.assert_array_equal(load_torch_zip(path)[0], BASE)
    _raises(path, "holds a list")


# --- malicious and non-checkpoint inputs --------------------------------------------------------------------------

class _Payload:
    """Pickles as a call ``func(arg)``; only ever passed to pickle.dumps, never loaded by plain pickle."""

    def __init__(self, func, arg) -> None:
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def test_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"model": _Payload(os.system, f"echo pwned > {marker}")}, protocol=2)
    path = _write_zip(tmp_path / "evil.pth", {"data.pkl": payload, "byteorder": b"little"})
    message = _raises(path, "refusing to load", "evil.pth", f"'{os.system.__module__}.system'", "malicious")
    assert message.count("'") == 2  # one line, one quoted global
    _raises(path, "refusing", func=load_torch_zip)
    assert not marker.exists()


def test_refuses_builtins_eval(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(eval, f"open({str(marker)!r}, 'w')"), protocol=2)
    path = _write_zip(tmp_path / "eval.pth", {"data.pkl": payload})
    _raises(path, "refusing to load", "eval.pth", ".eval'")
    assert not marker.exists()


def test_refuses_other_globals(tmp_path):
    getattr_pkl = b"\x80\x02" + _g("__builtin__", "getattr") + _tup(_s("x"), _s("upper")) + b"R."
    _raises(_hand_checkpoint(tmp_path / "ga.pth", pkl=getattr_pkl), "'__builtin__.getattr'")
    import argparse

    with_args = pickle.dumps({"model": {}, "args": argparse.Namespace(lr=1)}, protocol=2)
    _raises(_write_zip(tmp_path / "args.pth", {"data.pkl": with_args}), "'argparse.Namespace'")
    with_numpy = pickle.dumps({"w": np.ones(2)}, protocol=2)
    _raises(_write_zip(tmp_path / "np.pth", {"data.pkl": with_numpy}), "refusing", "numpy")
    rebuild = _g("torch._utils", "_rebuild_tensor_v2")
    subclass = (b"\x80\x02" + _g("torch._tensor", "_rebuild_from_type_v2")
                + _tup(rebuild, _g("torch.nn.parameter", "Buffer"), b")", b"}") + b"R.")
    _raises(_hand_checkpoint(tmp_path / "sub.pth", pkl=subclass), "'torch.nn.parameter.Buffer'")


def test_plain_pickle(tmp_path):
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))
    _raises(path, "weights.pkl", "plain Python pickle")


def test_legacy_format_without_torch(tmp_path):
    path = tmp_path / "old.pth"
    path.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2))
    _raises(path, "old.pth", "legacy PyTorch format (before 1.6) is not supported", "re-save it with torch.save")


def test_empty_random_missing_directory(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    _raises(empty, "empty.pth", "empty")
    noise = tmp_path / "noise.pth"
    data = np.random.default_rng(0).bytes(4096)
    assert data[:2] != b"PK" and data[8:9] != b"{" and data[:1] != b"\x80"
    noise.write_bytes(data)
    _raises(noise, "noise.pth", "neither a PyTorch checkpoint")
    _raises(tmp_path / "absent.pth", "absent.pth", "no such")
    _raises(tmp_path, str(tmp_path), "directory")
    _raises(tmp_path, "directory", func=load_torch_zip)


# --- safetensors -------------------------------------------------------------------------------------------------

def test_safetensors_roundtrip(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    tensors = {
        "conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "half": rng.standard_normal(5).astype(np.float16),
        "double": rng.standard_normal((2, 2)),
        "idx": np.arange(-3, 9, dtype=np.int64).reshape(3, 4),
        "i32": np.array([1, -2], np.int32),
        "bytes": np.array([0, 255], np.uint8),
        "mask": np.array([True, False]),
        "scalar": np.array(5, np.int64),
    }
    path = tmp_path / "model.weights"  # detected by content, not name
    save_file(tensors, str(path))
    got = read_state_dict(path)
    _assert_same(got, {k: tensors[k] for k in got})
    assert sorted(got) == sorted(tensors)


def _safetensors_bytes(header: dict, payload: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + payload


def test_safetensors_bfloat16_and_order(tmp_path):
    bf16 = (BF16_AS_F32.view(np.uint32) >> 16).astype("<u2").tobytes()
    ints = np.array([3, 4], "<i8").tobytes()
    header = {
        "z_bf16": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
        "a_ints": {"dtype": "I64", "shape": [2], "data_offsets": [8, 24]},
        "__metadata__": {"format": "pt"},
    }
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(_safetensors_bytes(header, bf16 + ints))
    _assert_same(read_state_dict(path), {"z_bf16": BF16_AS_F32.reshape(2, 2), "a_ints": np.array([3, 4])})


def test_corrupt_safetensors(tmp_path):
    bad_json = tmp_path / "bad.safetensors"
    bad_json.write_bytes(struct.pack("<Q", 16) + b'{"w": {"dtype":' + b"\0" * 8)
    _raises(bad_json, "bad.safetensors", "corrupt safetensors header")
    too_long = tmp_path / "long.safetensors"
    too_long.write_bytes(struct.pack("<Q", 10**9) + b'{"w": 1}')
    _raises(too_long, "long.safetensors", "corrupt safetensors header", "claims")
    bad_offsets = tmp_path / "offsets.safetensors"
    header = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 64]}}
    bad_offsets.write_bytes(_safetensors_bytes(header, b"\0" * 16))
    _raises(bad_offsets, "offsets.safetensors")


# --- round trips through real torch.save (skipped without torch) ---------------------------------------------------

def _as_numpy(t) -> np.ndarray:
    import torch

    t = t.detach()
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()


def test_torch_save_roundtrip(tmp_path):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    sd = OrderedDict(
        f32=torch.randn(3, 4, generator=g),
        f16=torch.randn(5, generator=g).half(),
        bf16=torch.randn(2, 3, generator=g).bfloat16(),
        f64=torch.randn(2, 2, generator=g, dtype=torch.float64),
        i64=torch.arange(-5, 5),
        i32=torch.tensor([1, -2, 3], dtype=torch.int32),
        i16=torch.tensor([-300, 7], dtype=torch.int16),
        i8=torch.tensor([-128, 127], dtype=torch.int8),
        u8=torch.tensor([0, 200, 255], dtype=torch.uint8),
        mask=torch.tensor([True, False, True]),
        base=base,
        transposed=base.t(),  # shares base's storage, non-contiguous
        every_other=base[:, ::2],
        window=base[1:3, 2:5],  # storage offset 8
        expanded=torch.arange(3.0).expand(4, 3),  # stride 0
        scalar=torch.tensor(7),
        empty=torch.zeros(0, 3),
        param=torch.nn.Parameter(torch.randn(2, 2, generator=g)),
        with_attribute=torch.ones(2),  # a tensor with Python state pickles via _rebuild_from_type_v2
    )
    sd["with_attribute"].note = "kept by torch, dropped here"
    path = tmp_path / "sd.pt"
    torch.save(sd, path)
    got = read_state_dict(path)
    _assert_same(got, {k: _as_numpy(v) for k, v in sd.items()})
    assert not np.shares_memory(got["base"], got["window"])


def test_torch_module_state_dict_in_wrapper(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2))
    model(torch.randn(2, 3, 3, 3))  # updates the BN running stats and num_batches_tracked
    sd = model.state_dict()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": sd, "optimizer": optimizer.state_dict(), "epoch": 3}, path)
    got = read_state_dict(path)
    _assert_same(got, {k: _as_numpy(v) for k, v in sd.items()})
    assert got["1.num_batches_tracked"].shape == () and got["1.num_batches_tracked"] == 1
    raw = load_torch_zip(path)
    assert raw["epoch"] == 3 and set(raw) == {"model", "optimizer", "epoch"}

    torch.save({"model_ema": {"x": torch.ones(1)}, "state_dict": sd}, path)
    assert list(read_state_dict(path)) == list(sd)


def test_torch_uint16_uses_rebuild_v3(tmp_path):
    torch = pytest.importorskip("torch")
    t = torch.tensor([[0, 1, 65535], [7, 8, 9]], dtype=torch.uint16)
    path = tmp_path / "u16.pt"
    torch.save({"u16": t, "u16_t": t.t()}, path)
    _assert_same(read_state_dict(path), {"u16": t.numpy(), "u16_t": t.t().numpy()})


def test_torch_list_and_whole_module(tmp_path):
    torch = pytest.importorskip("torch")
    tensors = [torch.arange(4), {"inner": torch.ones(2, dtype=torch.float16)}]
    path = tmp_path / "list.pt"
    torch.save(tensors, path)
    got = load_torch_zip(path)
    np.testing.assert_array_equal(got[0], np.arange(4))
    assert got[1]["inner"].dtype == np.float16
    torch.save(torch.nn.Linear(2, 2), path)  # a pickled module: classes we refuse
    _raises(path, "refusing to load", "'torch.nn.modules.linear.Linear'")


def test_torch_legacy_format(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    _raises(path, "legacy.pth", "legacy PyTorch format (before 1.6) is not supported")


@pytest.mark.parametrize("target", ["torch\nFloatStorage", "torch._utils\n_rebuild_tensor_v2", "torch\nTensor"])
def test_build_opcode_cannot_modify_loader_objects(tmp_path, target):
    """pickle's BUILD on an allowed global must fail and leave later loads untouched."""
    payload = (b"\x80\x02}q\x00(X\x01\x00\x00\x00xc" + target.encode() + b"\n}X\x04\x00\x00\x00bf16\x88sbu.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", payload)
    path = tmp_path / "poison.pth"
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError):
        read_state_dict(path)
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    clean = tmp_path / "clean.safetensors"
    from safetensors.numpy import save_file

    save_file(state, str(clean))
    np.testing.assert_array_equal(read_state_dict(clean)["w"], state["w"])
    from levit_np.weights import checkpoint_io

    assert checkpoint_io._STORAGES["FloatStorage"].bf16 is False
