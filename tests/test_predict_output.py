"""`levit predict` output and options: one table for many images, --csv, JSON metadata, --size, model names,
--class-names, --threads; and the one-line compile notice. Random weights written here: no ../shared needed."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import levit_np
from levit_np.images.labels import label, softmax
from levit_np.images.preprocessing import preprocess_hw
from levit_np.model.config import VARIANTS
from levit_np.model.params import random_params
from levit_np.weights.fileio import sha256_file
from levit_np.weights.hdf5_file import write_weights
from conftest import invoke_cli
from levit_cli.compiling import MESSAGE

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PHOTOS = [str(EXAMPLES / "cat.jpg"), str(EXAMPLES / "coffee.jpg")]


def run(*args):
    return invoke_cli("predict", *args)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    cfg = VARIANTS["levit_128s"]
    path = tmp_path_factory.mktemp("weights") / "random128s.h5"
    write_weights(path, cfg, random_params(cfg, seed=7))
    return path


@pytest.fixture(scope="module")
def model(weights):
    return levit_np.load(weights)


def probabilities(model, paths, size=(224, 224), crop_pct=0.875) -> np.ndarray:  # (B, classes)
    return softmax(model(np.stack([preprocess_hw(p, *size, crop_pct=crop_pct) for p in paths])))


def test_the_shipped_photos_exist():
    for photo in PHOTOS:
        assert 10_000 < Path(photo).stat().st_size < 80_000, photo
    assert "CC0" in (EXAMPLES / "README.md").read_text()


def test_many_images_make_one_table_with_a_row_per_image(weights, model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short relative names: the rows fit any console width the test may get
    Path("many").mkdir()
    paths = []
    for i in range(3):
        for photo in PHOTOS:
            paths.append(f"many/{i}_{Path(photo).name}")
            shutil.copy(photo, paths[-1])
    result = run("--weights", weights, "--backend", "numpy", "-k", "3", "many")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "6 images: top-3 each"
    assert re.split(r" {2,}", lines[1].strip()) == ["image", "top-1", "probability", "then"]
    rows = [re.split(r" {2,}", line.strip()) for line in lines if line.startswith("many/")]
    assert len(rows) == 6 and len(lines) == 3 + 6  # title, header, rule, one line per image
    expected = probabilities(model, sorted(paths))
    for row, path, p in zip(rows, sorted(paths), expected):
        order = np.argsort(-p, kind="stable")
        assert row == [path, label(order[0]), f"{p[order[0]]:.4f}",
                       f"{label(order[1])} {p[order[1]]:.3f}, {label(order[2])} {p[order[2]]:.3f}"], row


def test_one_image_keeps_the_detailed_table(weights):
    result = run("--weights", weights, "-k", "2", PHOTOS[0])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == PHOTOS[0] and lines[1].split() == ["#", "index", "wnid", "label", "probability"]
    assert len(lines) == 3 + 2
    assert set(result.stderr.splitlines()) <= {MESSAGE}  # at most the one-line notice of a first compile


def test_csv_has_one_row_per_image_with_the_top_k(weights, model, tmp_path):
    missing = str(tmp_path / "missing.jpg")
    result = run("--weights", weights, "--backend", "numpy", "--csv", "-k", "2", PHOTOS[0], missing, PHOTOS[1])
    assert result.exit_code == 1
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["image", "index_1", "label_1", "probability_1", "index_2", "label_2", "probability_2",
                       "error"]
    assert [row[0] for row in rows[1:]] == [PHOTOS[0], missing, PHOTOS[1]]
    assert rows[2][1:] == ["", "", "", "", "", "", f"{missing}: no such file"]
    expected = probabilities(model, PHOTOS)
    for row, p in zip((rows[1], rows[3]), expected):
        order = np.argsort(-p, kind="stable")[:2]
        assert [int(row[1]), int(row[4])] == order.tolist() and [row[2], row[5]] == [label(i) for i in order]
        np.testing.assert_allclose([float(row[3]), float(row[6])], p[order], rtol=1e-5, atol=0)
        assert row[7] == ""


def test_json_carries_model_weights_and_preprocessing_metadata(weights):
    result = run("--weights", weights, "--backend", "numpy", "--json", "-k", "1", "--crop-pct", "0.9", PHOTOS[0])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"model", "preprocessing", "images"}
    assert doc["model"] == {"variant": "levit_128s", "num_classes": 1000, "backend": "numpy",
                            "weights": str(weights), "weights_sha256": sha256_file(weights),
                            "class_names": "imagenet-1k"}
    prep = doc["preprocessing"]
    assert (prep["size"], prep["crop_pct"], prep["resize"]) == ([224, 224], 0.9, [248, 248])
    assert prep["mean"] == [0.485, 0.456, 0.406] and prep["std"] == [0.229, 0.224, 0.225]


def test_json_probabilities_are_rounded_to_six_significant_digits(weights, model):
    result = run("--weights", weights, "--backend", "numpy", "--json", "-k", "1000", PHOTOS[1])
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["images"][0]["predictions"]
    expected = probabilities(model, PHOTOS[1:])[0]
    got = [p["probability"] for p in predictions]
    for value in got:
        assert isinstance(value, float) and float(f"{value:.6g}") == value, value
    assert any(len(f"{value!r}") > 8 for value in expected.tolist())  # unrounded float32 values have more digits
    indices = [p["index"] for p in predictions]
    np.testing.assert_allclose(got, expected[indices], rtol=5e-6, atol=0)  # 6 digits: at most 5e-6 relative


def test_size_takes_height_and_width(weights, model):
    result = run("--weights", weights, "--backend", "numpy", "--json", "-k", "3", "--size", "192", "256",
                 PHOTOS[0])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["preprocessing"]["size"] == [192, 256]
    expected = probabilities(model, PHOTOS[:1], size=(192, 256))[0]
    got = [(p["index"], p["probability"]) for p in doc["images"][0]["predictions"]]
    order = np.argsort(-expected, kind="stable")[:3]
    assert [i for i, _ in got] == order.tolist()
    np.testing.assert_allclose([p for _, p in got], expected[order], rtol=5e-6, atol=0)
    bad = run("--weights", weights, "--size", "200", "224", PHOTOS[0])
    assert bad.exit_code == 2 and "--size" in bad.stderr and "16" in bad.stderr


@pytest.mark.parametrize("name", ["128s", "LeViT-128S"])
def test_every_spelling_of_a_model_name_is_accepted(weights, tmp_path, monkeypatch, name):
    monkeypatch.setenv("LEVIT_HOME", str(tmp_path))
    monkeypatch.setenv("LEVIT_WEIGHTS_URL", "http://127.0.0.1:9")  # a download would fail loudly
    shutil.copy(weights, tmp_path / "levit_128s.h5")
    result = run("--model", name, "--backend", "numpy", "--json", "-k", "1", PHOTOS[0])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["weights"] == str(tmp_path / "levit_128s.h5")


def test_an_unknown_model_name_lists_the_known_ones(weights):
    result = run("--model", "levit_999", PHOTOS[0])
    assert result.exit_code == 2
    assert "unknown LeViT variant 'levit_999'; known: levit_128s, levit_128, levit_192" in result.stderr


def test_class_names_label_a_fine_tuned_head(tmp_path):
    cfg = dataclasses.replace(VARIANTS["levit_128s"], num_classes=4)
    weights = tmp_path / "four.h5"
    write_weights(weights, cfg, random_params(cfg, seed=2))
    names = tmp_path / "names.txt"
    names.write_text("apple\nbanana\ncherry\ndate\n")
    result = run("--weights", weights, "--backend", "numpy", "--json", "-k", "4", "--class-names", names, PHOTOS[0])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model"]["num_classes"] == 4 and doc["model"]["class_names"] == "names.txt"
    predictions = doc["images"][0]["predictions"]
    assert sorted(p["label"] for p in predictions) == ["apple", "banana", "cherry", "date"]
    assert all(p["label"] == ["apple", "banana", "cherry", "date"][p["index"]] and p["wnid"] is None
               for p in predictions)
    plain = run("--weights", weights, "--backend", "numpy", "--json", "-k", "1", PHOTOS[0])
    assert json.loads(plain.stdout)["images"][0]["predictions"][0]["label"].startswith("class ")
    names.write_text("apple\nbanana\n")
    wrong = run("--weights", weights, "--class-names", names, PHOTOS[0])
    assert wrong.exit_code == 1
    assert wrong.stderr.strip() == f"Error: {names} has 2 class names, but the model has 4 classes"


def test_threads_is_accepted_after_the_command_and_json_with_csv_is_refused(weights):
    result = run("--weights", weights, "--backend", "numpy", "--threads", "1", "-k", "1", "--json", PHOTOS[0])
    assert result.exit_code == 0, result.output
    both = run("--weights", weights, "--json", "--csv", PHOTOS[0])
    assert both.exit_code == 2 and "either --json or --csv" in both.stderr


def test_the_compile_notice_is_one_line_printed_once(monkeypatch, capsys):
    numba = pytest.importorskip("numba")
    import levit_cli.compiling as compiling

    monkeypatch.setattr(compiling, "_announced", False)

    @numba.njit(cache=False)
    def add_one(x):
        return x + 1

    @numba.njit(cache=False)
    def add_two(x):
        return x + 2

    with compiling.compile_notice():
        assert add_one(1) == 2
        assert add_two(1) == 3
    with compiling.compile_notice():
        assert add_one(2.5) == 3.5  # a new signature compiles again: still no second line
    assert capsys.readouterr().err.splitlines() == [MESSAGE]
    monkeypatch.setattr(compiling, "_announced", False)
    with compiling.compile_notice():
        assert add_one(3) == 4  # compiled already: no compile event, no line
    assert capsys.readouterr().err == ""
