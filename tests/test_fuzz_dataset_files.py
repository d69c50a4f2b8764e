"""Fuzzing the evaluation's label files (levit_np.evaluation.datasets): the labels CSV, class maps and ImageNet-ReaL
files, mutated byte by byte and built from hostile text. See tests/fuzzing.py for the property."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from levit_np.evaluation.datasets import open_dataset, read_class_map, read_real_labels, wnid_index

from fuzzing import assert_reader_contract, fuzz_settings, mutated, write_case

WNIDS = sorted(wnid_index())
CSV = ("image,label\n" + "".join(f"img{i}.jpg,{WNIDS[i] if i % 2 else i}\n" for i in range(6))).encode()
CLASS_MAP = "".join(f"{w}\n" for w in WNIDS[:5]).encode()
REAL = json.dumps([[1, 2], [], [999], [0, 500, 7]]).encode()
CELLS = st.one_of(st.text(max_size=12), st.sampled_from(WNIDS[:3] + ["0", "999", "1000", "-1", "²", "٣", "1e3", ""]))


def _image_folder(tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "fuzz-images"
    folder.mkdir(exist_ok=True)
    for i in range(6):
        (folder / f"img{i}.jpg").write_bytes(b"not decoded while the labels are read")
    return folder


@fuzz_settings(ci_examples=150)
@given(data=st.one_of(mutated(CSV), st.lists(st.lists(CELLS, max_size=4), max_size=8).map(
    lambda rows: ("image,label\n" + "".join(",".join(row) + "\n" for row in rows)).encode("utf-8", "surrogatepass"))))
def test_fuzz_labels_csv(tmp_path_factory, data):
    folder = _image_folder(tmp_path_factory)
    labels = write_case(tmp_path_factory, "labels.csv", data)
    dataset = assert_reader_contract(lambda: open_dataset(folder, labels=labels), len(data))
    if dataset is not None:
        assert all(0 <= s.label < 1000 for s in dataset.samples)
        assert len({s.image for s in dataset.samples}) == len(dataset.samples)


@fuzz_settings(ci_examples=100)
@given(data=st.one_of(mutated(CLASS_MAP), st.binary(max_size=200)))
def test_fuzz_class_map(tmp_path_factory, data):
    path = write_case(tmp_path_factory, "classes.txt", data)
    wnids = assert_reader_contract(lambda: read_class_map(path), len(data))
    if wnids is not None:
        assert wnids and all(w in wnid_index() for w in wnids)


@fuzz_settings(ci_examples=150)
@given(data=st.one_of(mutated(REAL), st.recursive(st.integers(-2, 1200) | st.booleans() | st.none() | st.text(max_size=3),
                                                  lambda inner: st.lists(inner, max_size=4), max_leaves=20).map(
    lambda value: json.dumps(value).encode()), st.just(b"[" * 5000 + b"]" * 5000)))
def test_fuzz_real_labels(tmp_path_factory, data):
    path = write_case(tmp_path_factory, "real.json", data)
    sets = assert_reader_contract(lambda: read_real_labels(path), len(data))
    if sets is not None:
        assert all(all(0 <= c < 1000 for c in entry) for entry in sets)
