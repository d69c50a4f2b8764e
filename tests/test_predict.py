"""`levit predict`: JSON format and order, inputs (files, directories, globs), bad images, and the numbers.

The numbers are checked two ways, both end to end from the photo files through the CLI's JSON:
- torch-free: the official model's logits on the official transform of the shared photos (fixture
  `logits_images`), softmaxed, against our probabilities with the fixture's weights;
- live PyTorch: a transformers LeViT with its own random weights, run on the fixture's `x_images` (the official
  transform's output), against `levit predict --weights` on that model's safetensors file.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import levit_np
from levit_np.images.labels import label, softmax, wnid
from levit_np.images.preprocessing import preprocess

from conftest import SHARED, invoke_cli
from levit_cli.inputs import IMAGE_EXTENSIONS, expand
from levit_cli.main import cli

IMAGES = SHARED / "images"
PROB_ATOL = 1e-5  # probabilities of two float32 forward passes (logits agree to ~1e-5 relative)


def run(*args: str):
    return invoke_cli("predict", *args)


@pytest.fixture(scope="session")
def fixture_h5(official_pth, tmp_path_factory) -> Path:
    """The official fixture checkpoint converted once to .h5 (random weights, official layout)."""
    from levit_np.weights.convert import convert_checkpoint

    path = tmp_path_factory.mktemp("weights") / "levit_128s_random.h5"
    convert_checkpoint(official_pth, path)
    return path


@pytest.fixture(scope="session")
def fixture_model(fixture_h5):
    return levit_np.load(fixture_h5)


@pytest.fixture(scope="session")
def photos(official_expected) -> list[str]:
    """The shared photos, in the order of the fixture's `x_images` / `logits_images`."""
    return [str(IMAGES / name) for name in official_expected["image_names"]]


@pytest.fixture(scope="session")
def all_photo_probabilities(fixture_h5, photos) -> dict:
    """`levit predict --json --top-k 1000` on all photos (one CLI run): image -> (1000,) probabilities by index."""
    result = run("--weights", str(fixture_h5), "--json", "--top-k", "1000", "--batch-size", "8", *photos)
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["images"]
    assert [entry["image"] for entry in entries] == photos
    probabilities = {}
    for entry in entries:
        row = np.full(1000, np.nan)
        for p in entry["predictions"]:
            row[p["index"]] = p["probability"]
        probabilities[entry["image"]] = row
    return probabilities


def write_bomb_png(path: Path, side: int = 30_000) -> None:
    """A tiny PNG whose header claims side x side pixels (900 M > Pillow's 2 x 89.5 M hard limit)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def bad_files(folder: Path) -> dict[str, Path]:
    """One file per kind of bad input; the key is a word the error message must contain."""
    jpeg = (IMAGES / "coral" / "hot_dog.jpg").read_bytes()
    files = {"no such file": folder / "missing.jpg", "empty": folder / "empty.png",
             "truncated": folder / "truncated.jpg", "not an image": folder / "notes.jpg",
             "too large": folder / "bomb.png"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(jpeg[: len(jpeg) // 2])
    files["not an image"].write_text("these are not pixels\n")
    write_bomb_png(files["too large"])
    return files


# ---------------------------------------------------------------------------------------------- the numbers


def test_probabilities_match_the_official_model_logits(all_photo_probabilities, official_expected, photos):
    """Torch-free: softmax of the official model's logits (fixture) vs our pipeline from the photo files."""
    expected = softmax(official_expected["logits_images"]).astype(np.float64)
    ours = np.stack([all_photo_probabilities[photo] for photo in photos])
    error = float(np.abs(ours - expected).max())
    print(f"max |probability - softmax(official logits_images)| over {len(photos)} photos: {error:.3e}")
    np.testing.assert_allclose(ours, expected, rtol=0, atol=PROB_ATOL)
    top = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    gaps = np.diff(-np.take_along_axis(expected, top, axis=1), axis=1)
    assert gaps.min() > 2 * PROB_ATOL, "the fixture's top-5 has near-ties; the ranking check below needs none"
    np.testing.assert_array_equal(np.argsort(-ours, axis=1, kind="stable")[:, :5], top)


def test_top_k_matches_live_pytorch(tmp_path, official_expected, photos):
    tr = pytest.importorskip("torch_reference")
    if not tr.have_transformers():
        pytest.skip("torch and transformers are not installed (pip install -e '.[test]')")
    reference = tr.build_hf_model("levit_128s", seed=3)
    weights = tr.save_checkpoint(tr.state_dict_numpy(reference), tmp_path / "model.safetensors", "safetensors")
    expected = softmax(tr.reference_logits(reference, official_expected["x_images"])).astype(np.float64)
    k = 5
    result = run("--weights", str(weights), "--json", "--top-k", str(k), *photos)
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["images"]
    worst = 0.0
    for entry, row in zip(entries, expected):
        indices = [p["index"] for p in entry["predictions"]]
        probabilities = np.array([p["probability"] for p in entry["predictions"]])
        reference_top = np.argsort(-row, kind="stable")[:k]
        worst = max(worst, float(np.abs(probabilities - row[indices]).max()))
        np.testing.assert_allclose(probabilities, row[reference_top], rtol=0, atol=PROB_ATOL,
                                   err_msg=f"{entry['image']}: top-{k} probabilities")
        near_tie = np.diff(-row[reference_top]).min() <= 2 * PROB_ATOL
        if not near_tie:
            assert indices == reference_top.tolist(), entry["image"]
    print(f"max |probability - PyTorch (transformers) probability| over top-{k} of {len(photos)} photos: "
          f"{worst:.3e}")


# ---------------------------------------------------------------------------------------------- JSON and tables


def test_json_structure_and_input_order(fixture_model, fixture_h5, tmp_path):
    """Images come back in argument order (not sorted), each with top-k predictions largest first."""
    names = ["skimage/rocket.jpg", "coral/bird.bmp", "skimage/camera.png"]
    paths = [str(IMAGES / name) for name in names]
    result = run("--weights", str(fixture_h5), "--backend", "numpy", "--json", "-k", "3", "--batch-size", "2", *paths)
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["images"]
    assert [entry["image"] for entry in entries] == paths
    probabilities = softmax(fixture_model(np.stack([preprocess(path) for path in paths])))
    for entry, row in zip(entries, probabilities):
        assert set(entry) == {"image", "predictions"}
        assert len(entry["predictions"]) == 3
        for p in entry["predictions"]:
            assert set(p) == {"index", "wnid", "label", "probability"}
            assert isinstance(p["index"], int) and isinstance(p["probability"], float)
            assert (p["wnid"], p["label"]) == (wnid(p["index"]), label(p["index"]))
        got = [p["probability"] for p in entry["predictions"]]
        assert got == sorted(got, reverse=True)
        np.testing.assert_allclose(got, np.sort(row)[::-1][:3], rtol=0, atol=1e-6)


def test_crop_pct_changes_the_resize(fixture_model, fixture_h5):
    photo = str(IMAGES / "coral" / "grace_hopper.bmp")
    result = run("--weights", str(fixture_h5), "--backend", "numpy", "--json", "-k", "1000", "--crop-pct", "0.9",
                 photo)  # the numpy backend, as fixture_model: only the preprocessing differs
    assert result.exit_code == 0, result.output
    got = np.zeros(1000)
    for p in json.loads(result.stdout)["images"][0]["predictions"]:
        got[p["index"]] = p["probability"]
    timm_style, official = (softmax(fixture_model(preprocess(photo, crop_pct=c)[None]))[0] for c in (0.9, 0.875))
    np.testing.assert_allclose(got, timm_style, rtol=0, atol=1e-6)
    assert np.abs(got - official).max() > 1e-4  # 0.9 really is a different input than 0.875


def test_table_output(fixture_h5):
    photo = str(IMAGES / "coral" / "cat.bmp")
    result = run("--weights", str(fixture_h5), "-k", "2", photo)
    assert result.exit_code == 0, result.output
    assert "cat.bmp" in result.stdout
    for column in ("index", "wnid", "label", "probability"):
        assert column in result.stdout
    assert result.stderr == ""


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_bad_images_get_an_error_and_the_others_are_classified(fixture_h5, tmp_path, as_json):
    good = [str(IMAGES / "coral" / "cat.bmp"), str(IMAGES / "skimage" / "coffee.png")]
    bad = bad_files(tmp_path)
    arguments = [good[0], *map(str, bad.values()), good[1]]
    result = run("--weights", str(fixture_h5), "-k", "1", *(["--json"] if as_json else []), *arguments)
    assert result.exit_code == 1
    if as_json:
        entries = json.loads(result.stdout)["images"]
        assert [entry["image"] for entry in entries] == arguments
        assert "predictions" in entries[0] and "predictions" in entries[-1]
        for entry, word in zip(entries[1:-1], bad):
            assert set(entry) == {"image", "error"}
            assert word in entry["error"] and "\n" not in entry["error"], entry
    else:
        error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(error_lines) == len(bad)
        for line, word in zip(error_lines, bad):
            assert word in line
        assert f"{len(bad)} of {len(arguments)} images failed" in result.stderr
        assert "cat.bmp" in result.stdout and "coffee.png" in result.stdout


def test_long_image_paths_are_printed_whole_on_one_line(fixture_h5, tmp_path):
    """A table's image name is never wrapped or cut, whatever the path's length, and carries no trailing spaces."""
    nested = tmp_path / ("a_rather_long_directory_name_" * 4) / "with" / "nested" / "folders"
    nested.mkdir(parents=True)
    photo = nested / "coffee.png"
    photo.write_bytes((IMAGES / "skimage" / "coffee.png").read_bytes())
    result = run("--weights", str(fixture_h5), "-k", "1", str(photo))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert str(photo) in lines, result.stdout
    assert all(line == line.rstrip() for line in lines if str(photo) in line)


def test_a_missing_weights_file_is_a_usage_error(tmp_path):
    result = run("--weights", str(tmp_path / "nope.h5"), str(IMAGES / "coral" / "cat.bmp"))
    assert result.exit_code == 2
    assert "nope.h5" in result.stderr


def test_weights_and_model_together_are_refused(fixture_h5):
    result = run("--weights", str(fixture_h5), "--model", "levit_128s", str(IMAGES / "coral" / "cat.bmp"))
    assert result.exit_code == 2
    assert "either --weights" in result.stderr


def test_console_script_in_a_subprocess(fixture_h5, tmp_path):
    levit = shutil.which("levit")
    if levit is None:
        pytest.skip("the levit console script is not on PATH (pip install -e .)")
    photo = str(IMAGES / "skimage" / "chelsea.png")
    missing = str(tmp_path / "missing.png")
    env = {**os.environ, "LEVIT_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([levit, "predict", "--weights", str(fixture_h5), "--json", photo, missing],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    entries = json.loads(proc.stdout)["images"]
    assert [entry["image"] for entry in entries] == [photo, missing]
    assert len(entries[0]["predictions"]) == 5 and "no such file" in entries[1]["error"]


# ---------------------------------------------------------------------------------------------- image modes


def test_every_image_mode_is_classified(fixture_model, fixture_h5, tmp_path):
    """Grayscale, palette, RGBA, CMYK, 16-bit and 1-bit files all get predictions equal to the library's."""
    base = Image.open(IMAGES / "skimage" / "chelsea.png").convert("RGB")
    images = {"L.png": base.convert("L"), "P.png": base.convert("P"), "RGBA.png": base.convert("RGBA"),
              "CMYK.jpg": base.convert("CMYK"), "1.png": base.convert("1"),
              "I16.png": Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)}
    paths = []
    for name, image in images.items():
        image.save(tmp_path / name)
        paths.append(str(tmp_path / name))
    assert Image.open(paths[-1]).mode.startswith("I")
    result = run("--weights", str(fixture_h5), "--backend", "numpy", "--json", "-k", "1", *paths)
    assert result.exit_code == 0, result.output
    expected = softmax(fixture_model(np.stack([preprocess(path) for path in paths]))).max(axis=1)
    got = [entry["predictions"][0]["probability"] for entry in json.loads(result.stdout)["images"]]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------- inputs


@pytest.fixture
def tree(tmp_path) -> Path:
    """a.png, b/c.JPG, b/d/e.bmp, b/notes.txt, .hidden/f.png, b/.g.png, empty/"""
    for name in ["a.png", "b/c.JPG", "b/d/e.bmp", "b/notes.txt", ".hidden/f.png", "b/.g.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_directories_are_walked_recursively_for_image_files(tree):
    found = [item.path for item in expand([str(tree)])]
    assert found == [str(tree / "a.png"), str(tree / "b" / "c.JPG"), str(tree / "b" / "d" / "e.bmp")]


def test_globs_are_expanded_sorted_and_keep_image_files(tree):
    assert [item.path for item in expand([str(tree / "b" / "*")])] == [
        str(tree / "b" / "c.JPG"), str(tree / "b" / "d" / "e.bmp")]
    assert [item.path for item in expand([str(tree / "**" / "*.bmp")])] == [str(tree / "b" / "d" / "e.bmp")]


def test_explicit_files_are_kept_in_argument_order(tree):
    arguments = [str(tree / "b" / "notes.txt"), str(tree / "a.png"), str(tree / "missing.png")]
    items = expand(arguments)
    assert [item.path for item in items] == arguments
    assert [item.error for item in items[:2]] == [None, None]
    assert items[2].error == f"{arguments[2]}: no such file"


def test_no_download_when_no_input_is_readable(tmp_path, monkeypatch):
    monkeypatch.setenv("LEVIT_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LEVIT_WEIGHTS_URL", "http://127.0.0.1:9")  # would fail loudly if it were tried
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "missing.jpg")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {tmp_path / 'missing.jpg'}: no such file"]
    assert not (tmp_path / "cache").exists()


def test_empty_directories_and_globs_are_errors(tree):
    items = expand([str(tree / "empty"), str(tree / "*.gif")])
    assert [item.path for item in items] == [str(tree / "empty"), str(tree / "*.gif")]
    assert "no image files" in items[0].error and "no image files" in items[1].error


def test_image_extensions_are_lower_case_with_a_dot():
    assert all(ext.startswith(".") and ext == ext.lower() for ext in IMAGE_EXTENSIONS)


def test_a_directory_and_a_glob_through_the_cli(fixture_h5, tmp_path):
    for name in ["x/one.bmp", "x/y/two.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(IMAGES / "coral" / "bird.bmp", tmp_path / name)
    result = run("--weights", str(fixture_h5), "--json", "-k", "1", str(tmp_path / "x"),
                 str(tmp_path / "x" / "*.bmp"), str(tmp_path / "nothing-*.png"))
    assert result.exit_code == 1  # the glob that matches nothing
    entries = json.loads(result.stdout)["images"]
    assert [entry["image"] for entry in entries] == [
        str(tmp_path / "x" / "one.bmp"), str(tmp_path / "x" / "y" / "two.png"), str(tmp_path / "x" / "one.bmp"),
        str(tmp_path / "nothing-*.png")]
    assert "no image files match" in entries[-1]["error"]
    first = [(p["index"], p["probability"]) for p in entries[0]["predictions"]]
    for entry in entries[1:3]:
        np.testing.assert_allclose([(p["index"], p["probability"]) for p in entry["predictions"]], first,
                                   rtol=0, atol=1e-6)


def test_an_unexpected_failure_stays_with_its_image_unless_verbose(fixture_model, monkeypatch):
    import levit_np.images.classify as classify_module

    photos = [str(IMAGES / "coral" / "cat.bmp"), str(IMAGES / "coral" / "bird.bmp")]
    real = classify_module.preprocess_hw

    def flaky(path, *args, **kwargs):
        if path.endswith("bird.bmp"):
            raise RuntimeError("decoder bug")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(classify_module, "preprocess_hw", flaky)
    results = list(classify_module.classify(fixture_model, photos, k=2))
    assert results[0].predictions is not None and len(results[0].predictions) == 2
    assert results[1].error == f"{photos[1]}: RuntimeError: decoder bug"
    with pytest.raises(RuntimeError, match="decoder bug"):
        list(classify_module.classify(fixture_model, photos, raise_unexpected=True))
