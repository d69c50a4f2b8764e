"""Layer-by-layer traces: names, shapes and values of every step, `levit trace` with --save/--json/--against-torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import levit_np
from levit_cli.main import cli
from levit_np.model.config import blocks
from levit_np.images.preprocessing import preprocess_hw
from levit_np.model.grid import token_grids
from levit_np.analysis.tracing import first_divergence, max_differences
from levit_np.perf.model_profile import timed_trace


@pytest.fixture(scope="module")
def model():
    return levit_np.create("levit_128s", seed=11)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 240x180 PNG with some structure (no dependency on ../shared)."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:180, 0:240]
    rgb = np.stack([xs % 256, ys * 255 // 179, (xs * ys) % 256], axis=-1) + rng.integers(0, 20, (180, 240, 3))
    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


def run(*args):
    return CliRunner().invoke(cli, ["trace", *map(str, args)])


def expected_shapes(model, batch: int, height: int, width: int) -> dict[str, tuple]:
    """Independent of the trace: stem (B, C, H/16, W/16), block outputs (B, rows*cols, C_out), pool, logits."""
    cfg = model.config
    grids = token_grids(cfg, height, width)
    shapes = {"stem": (batch, cfg.embed_dims[0], *grids[0])}
    for block in blocks(cfg):
        shapes[block.name] = (batch, grids[block.stage][0] * grids[block.stage][1], block.dim_out)
    shapes["pool"] = (batch, cfg.embed_dims[-1])
    shapes["logits"] = (batch, cfg.num_classes)
    return shapes


@pytest.mark.parametrize("height, width", [(224, 224), (160, 224)])
def test_timed_trace_names_shapes_values(model, height, width):
    x = np.random.default_rng(1).standard_normal((2, 3, height, width), dtype=np.float32)
    steps = timed_trace(model, x)
    assert [s.name for s in steps] == model.block_names()
    assert {s.name: s.value.shape for s in steps} == expected_shapes(model, 2, height, width)
    plain = model.trace(x)
    for step in steps:
        np.testing.assert_array_equal(step.value, plain[step.name], err_msg=step.name)
        assert step.seconds >= 0
    stats = steps[3].stats()
    v = steps[3].value.astype(np.float64)
    assert stats["shape"] == list(v.shape) and stats["max"] == v.max() and abs(stats["std"] - v.std()) < 1e-12


def test_divergence_points_at_the_first_changed_block(model):
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224), dtype=np.float32)
    steps = timed_trace(model, x, warmup=False)
    reference = {s.name: s.value.copy() for s in steps}
    assert first_divergence(max_differences(steps, reference)) is None
    reference["stages.1.blocks.0.mlp"] = reference["stages.1.blocks.0.mlp"] * np.float32(1.01)
    del reference["logits"]
    diffs = max_differences(steps, reference)
    assert first_divergence(diffs) == "stages.1.blocks.0.mlp" and diffs["logits"] is None
    assert diffs["stages.1.blocks.0.mlp"][1] == pytest.approx(0.01 / 1.01, rel=1e-3)


def test_cli_trace_saves_every_intermediate(model, photo, tmp_path):
    target = tmp_path / "trace.npz"
    result = run(photo, "--random", "levit_128s", "--seed", 11, "--size", 160, 224, "--save", target, "--json",
                 "--backend", "numpy")  # bitwise equal to the numpy `model` below
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["backend"] == "numpy"
    x = preprocess_hw(photo, 160, 224)[None]
    with np.load(target) as z:
        assert z.files == ["input"] + model.block_names()
        np.testing.assert_array_equal(z["input"], x)
        trace = model.trace(x)
        for name in model.block_names():
            np.testing.assert_array_equal(z[name], trace[name], err_msg=name)
    assert [b["name"] for b in doc["blocks"]] == model.block_names()
    shapes = expected_shapes(model, 1, 160, 224)
    for b in doc["blocks"]:
        assert tuple(b["shape"]) == shapes[b["name"]]
        assert b["mean"] == pytest.approx(float(trace[b["name"]].astype(np.float64).mean()), abs=1e-9)
        assert b["min"] <= b["mean"] <= b["max"] and b["ms"] >= 0


def test_cli_trace_of_one_photo_runs_the_reference_by_the_auto_rule(photo):
    result = run(photo, "--random", "levit_128s", "--seed", 11, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["backend"] == "numpy"  # one pass of 0.31 G multiply-adds: under auto's 3 G


def test_cli_trace_runs_numba_when_asked_and_takes_threads(model, photo):
    pytest.importorskip("numba")
    result = run(photo, "--random", "levit_128s", "--seed", 11, "--json", "--threads", "1", "--backend", "numba")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["backend"] == "numba"
    trace = model.trace(preprocess_hw(photo, 224, 224)[None])  # the numpy reference
    for b in doc["blocks"]:
        scale = float(np.abs(trace[b["name"]]).max())
        assert b["mean"] == pytest.approx(float(trace[b["name"]].astype(np.float64).mean()), abs=1e-5 * scale), b


def test_cli_trace_table(photo):
    result = run(photo, "--random", "levit_128s")
    assert result.exit_code == 0, result.output
    for name in ("stem", "stages.1.downsample.attn", "stages.2.blocks.3.mlp", "logits", "1x16x384"):
        assert name in result.output


def test_cli_against_torch(photo):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    result = run(photo, "--random", "levit_128s", "--seed", 11, "--against-torch", "--json")
    assert result.exit_code == 0, result.output
    rel = {b["name"]: b["rel_diff"] for b in json.loads(result.stdout)["blocks"]}
    print(f"worst relative difference to HF: {max(rel.values()):.2e}")
    assert len(rel) == 25 and max(rel.values()) < 1e-5, rel


@pytest.mark.parametrize("args, message", [
    (["--against-torch", "--size", "160", "224"], "square inputs only"),
    (["--size", "100", "100"], "multiples of 16"),
    (["--backend", "cuda"], "'cuda' is not one of 'auto', 'numpy', 'numba'"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(photo, tmp_path, args, message):
    if "--against-torch" in args:
        pytest.importorskip("transformers")
    result = run(photo, "--random", "levit_128s", "--save", tmp_path / "t.npz", *args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


def test_cli_unreadable_image(tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"hello")
    result = run(bad, "--random", "levit_128s", "--save", tmp_path / "t.npz")
    assert result.exit_code == 1 and "not an image file" in result.output, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["not-an-image.png"]
