"""Fuzzing the levit-np HDF5 weights reader: byte-mutated .h5 files (edits focused on HDF5's metadata, not the
tensor bytes), attributes of wrong types, and /params entries that are links, groups, other dtypes or huge
declared shapes. See tests/fuzzing.py for the property and the budget."""

from __future__ import annotations

import dataclasses
import json
import shutil

import h5py
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from levit_np.errors import WeightsFileError
from levit_np.model.config import VARIANTS
from levit_np.model.params import param_shapes, random_params
from levit_np.weights import hdf5_file
from levit_np.weights.hdf5_file import read_info, read_weights, write_weights

from fuzzing import assert_reader_contract, edits, fuzz_settings, write_case

# A small LeViT (same file structure as a released variant, 1/60 of the bytes), so that each case is quick;
# the reader accepts only released variants' configs, so it is registered as one for these tests.
CFG = dataclasses.replace(VARIANTS["levit_128s"], name="levit_fuzz", embed_dims=(32, 48, 64), key_dim=8,
                          num_heads=(2, 3, 4), depths=(1, 2, 1), num_classes=10)
PARAMS = random_params(CFG, seed=3)
NAMES = list(param_shapes(CFG))


@pytest.fixture(scope="module", autouse=True)
def fuzz_variant_is_known():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(hdf5_file.VARIANTS, CFG.name, CFG)
        yield


@pytest.fixture(scope="module")
def valid_h5(tmp_path_factory, fuzz_variant_is_known):
    path = tmp_path_factory.mktemp("h5") / "levit_fuzz.h5"
    write_weights(path, CFG, PARAMS, source_name="LeViT-128S-0000.pth", source_sha256="ab" * 32,
                  source_layout="official")
    return path


@pytest.fixture(scope="module")
def valid_bytes(valid_h5):
    """The valid file's bytes and its metadata regions."""
    return valid_h5.read_bytes(), _metadata_regions(valid_h5)


def _metadata_regions(path) -> list[tuple[int, int]]:
    """The byte ranges of the file that are not tensor data: superblock, object headers, B-trees, heaps."""
    with h5py.File(path, "r") as f:
        data = sorted((ds.id.get_offset(), ds.id.get_offset() + ds.id.get_storage_size())
                      for ds in f["params"].values())
    regions, at = [], 0
    for start, end in data:
        if start > at:
            regions.append((at, start))
        at = max(at, end)
    size = path.stat().st_size
    return regions + ([(at, size)] if at < size else [])


def _check_both_readers(path, size: int) -> None:
    """read_info and read_weights each give a correct result or a one-line WeightsFileError (read_weights
    runs the same checks as read_info first, so it is tried only on files read_info accepts: fewer slow cases)."""
    info = assert_reader_contract(lambda: read_info(path), size, memory_factor=1)
    if info is None:
        return
    assert info[0].config == CFG and sorted(info[1]) == sorted(NAMES)
    result = assert_reader_contract(lambda: read_weights(path), size, memory_factor=3)
    if result is not None:
        meta, params = result
        assert meta.config == CFG and sorted(params) == sorted(NAMES)
        assert all(params[n].shape == shape and params[n].dtype == np.float32 for n, shape in param_shapes(CFG).items())


@fuzz_settings(ci_examples=60)
@given(data=st.data())
def test_fuzz_mutated_h5(tmp_path_factory, valid_bytes, data):
    """Bit flips, overwrites, deletions and truncation, 90% of them in the metadata (on main, 18 of 50 such
    files raised h5py's RuntimeError through `levit info`)."""
    original, regions = valid_bytes
    changes = data.draw(edits(len(original), regions=regions, most=3), label="edits")
    mutated_file = changes.apply(original)
    _check_both_readers(write_case(tmp_path_factory, "case.h5", mutated_file), len(mutated_file))


_WRONG_VALUES = st.one_of(
    st.integers(-2**63, 2**63 - 1), st.floats(), st.booleans().map(np.bool_),
    st.binary(max_size=12).filter(lambda b: b"\0" not in b),  # (h5py cannot store a NUL in a string)
    st.just(b"\xff\xfe not utf-8"), st.text(max_size=12).filter(lambda t: "\0" not in t), st.just("x" * 5000),
    st.lists(st.integers(0, 9), min_size=1, max_size=3).map(np.array),
    st.just(np.array(["levit-np", "again"], dtype=h5py.string_dtype())), st.just(np.zeros((0,), np.int32)),
    st.just(h5py.Empty("f4")), st.just(np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])),
    st.sampled_from(["levit-np", "1", "1.0"]),
)
_BAD_CONFIGS = st.one_of(
    st.just("{not json"), st.just("[]"), st.just("null"), st.just(json.dumps({"name": "levit_128s"})),
    st.builds(lambda key, value: json.dumps({**CFG.to_dict(), key: value}),
              st.sampled_from(sorted(CFG.to_dict())),
              st.one_of(st.integers(-5, 10**12), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=3),
                        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))),
    st.just(json.dumps({**CFG.to_dict(), "extra": 1})),
)


@fuzz_settings(ci_examples=40)
@given(name=st.sampled_from(["format", "format_version", "variant", "config", "source_name", "converter_version",
                             "unexpected"]),
       value=st.one_of(_WRONG_VALUES, _BAD_CONFIGS))
def test_fuzz_attributes_of_wrong_types(tmp_path_factory, valid_h5, name, value):
    """Any root attribute replaced by a value of another type, shape or content."""
    path = tmp_path_factory.getbasetemp() / "attrs.h5"
    shutil.copyfile(valid_h5, path)
    with h5py.File(path, "r+") as f:
        if name in f.attrs:
            del f.attrs[name]
        f.attrs[name] = value
    _check_both_readers(path, valid_h5.stat().st_size)


@fuzz_settings(ci_examples=30)
@given(name=st.sampled_from(NAMES[:3] + NAMES[-3:] + ["extra"]),
       change=st.sampled_from(["soft link", "external link", "group", "float64", "int32", "string", "compound",
                               "huge chunked", "huge compressed", "scalar", "wrong shape", "deleted"]))
def test_fuzz_params_entries(tmp_path_factory, valid_h5, name, change):
    """/params/<name> turned into a link, a group, another dtype, a huge declared shape or removed: refused
    before any tensor is read (a huge declared dataset would otherwise be allocated in full)."""
    assume(not (name == "extra" and change == "deleted"))  # that file is valid
    path = tmp_path_factory.getbasetemp() / "params.h5"
    shutil.copyfile(valid_h5, path)
    with h5py.File(path, "r+") as f:
        group = f["params"]
        if name in group:
            del group[name]
        if change == "soft link":
            group[name] = h5py.SoftLink(f"/params/{NAMES[5]}")
        elif change == "external link":
            group[name] = h5py.ExternalLink(str(valid_h5), f"/params/{NAMES[5]}")
        elif change == "group":
            group.create_group(name)
        elif change in ("float64", "int32", "string", "compound"):
            dtype = {"float64": "f8", "int32": "i4", "string": h5py.string_dtype(),
                     "compound": [("a", "f4"), ("b", "f4")]}[change]
            group.create_dataset(name, shape=PARAMS.get(name, np.zeros(3)).shape, dtype=dtype)
        elif change == "huge chunked":
            group.create_dataset(name, shape=(2**20, 2**20), dtype="f4", chunks=(64, 64))
        elif change == "huge compressed":
            group.create_dataset(name, shape=(2**16, 2**15), dtype="f4", chunks=(1024, 1024), compression="gzip",
                                 fillvalue=1.0)
        elif change == "scalar":
            group.create_dataset(name, data=np.float32(1))
        elif change == "wrong shape":
            group.create_dataset(name, data=np.zeros((3, 5), np.float32))
    info = assert_reader_contract(lambda: read_info(path), 1 << 20, memory_factor=1)
    weights = assert_reader_contract(lambda: read_weights(path), path.stat().st_size, memory_factor=3)
    assert info is None and weights is None, f"accepted /params/{name} after '{change}'"


def test_mutated_h5_message_says_what_to_do(tmp_path, valid_h5):
    """The message a damaged file gives (the B-tree of /params overwritten)."""
    data = bytearray(valid_h5.read_bytes())
    start, end = _metadata_regions(valid_h5)[0]
    data[start + 800:start + 1600] = b"\xa5" * 800
    path = tmp_path / "broken.h5"
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsFileError) as failure:
        read_weights(path)
    message = str(failure.value)
    print(message)
    assert "not a readable levit-np weights file" in message and "convert" in message and "\n" not in message
