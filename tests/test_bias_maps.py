"""Attention-bias maps: the numbers are the checkpoint's biases gathered with its own index buffers; `levit bias`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import levit_np
from levit_cli.main import cli
from levit_np.analysis.bias_maps import bias_maps, to_arrays, to_json
from levit_np.weights.checkpoint_io import read_state_dict
from levit_np.model.config import blocks
from levit_np.errors import LevitError
from levit_np.weights.layouts import official_bias_index_keys, official_keys


@pytest.fixture(scope="module")
def official(official_pth):
    """(model, raw official state dict) of the shared LeViT-128S fixture (random weights, random biases)."""
    return levit_np.load(official_pth), read_state_dict(official_pth)


@pytest.fixture(scope="module")
def random_model():
    return levit_np.create("levit_128s", seed=5)


def run(*args):
    return CliRunner().invoke(cli, ["bias", *map(str, args)])


def test_maps_are_the_official_biases_gathered_by_the_official_index(official):
    """Map[h] = attention_biases[h, attention_bias_idxs[query 0]] laid on the key grid, for all 11 modules."""
    model, state = official
    keys = official_keys(model.config)
    index_keys = {block.name: key for key, block in official_bias_index_keys(model.config).items()}
    maps = bias_maps(model.config, model.params)
    assert [m.name for m in maps] == [b.name for b in blocks(model.config) if b.kind.has_attention] and len(maps) == 11
    for m in maps:
        table = state[keys[f"{m.name}.attention_biases"]]
        idxs = state[index_keys[m.name]]  # (Nq, Nk) int64, as the official code built it
        side = int(np.sqrt(idxs.shape[1]))
        assert m.maps.shape == (table.shape[0], side, side), m.name
        np.testing.assert_array_equal(m.maps, table[:, idxs[0]].reshape(-1, side, side), err_msg=m.name)
        assert np.abs(m.maps).max() > 0.5, f"{m.name}: the fixture's biases are random, not zero"


def test_model_bias_is_the_official_gather(official):
    """The bias the forward pass adds, (h, Nq, Nk), equals attention_biases[:, attention_bias_idxs] exactly."""
    model, state = official
    keys = official_keys(model.config)
    for key, block in official_bias_index_keys(model.config).items():
        idxs = state[key]
        k_side = int(np.sqrt(idxs.shape[1]))
        q_side = int(np.sqrt(idxs.shape[0]))
        got = model.bias_for(block, (q_side, q_side), (k_side, k_side))
        np.testing.assert_array_equal(got, state[keys[f"{block.name}.attention_biases"]][:, idxs], err_msg=key)


def test_selection(random_model):
    cfg, params = random_model.config, random_model.params
    assert [m.name for m in bias_maps(cfg, params, stage=1)] == [
        "stages.1.downsample.attn", "stages.1.blocks.0.attn", "stages.1.blocks.1.attn", "stages.1.blocks.2.attn"]
    assert [m.name for m in bias_maps(cfg, params, block="down")] == [
        "stages.1.downsample.attn", "stages.2.downsample.attn"]
    only = bias_maps(cfg, params, stage=2, block="3")
    assert [m.label for m in only] == ["stage 2 block 3"] and only[0].maps.shape == (8, 4, 4)
    with pytest.raises(LevitError, match="stage/block pairs: 0/0, 0/1, 1/0"):
        bias_maps(cfg, params, stage=0, block="down")


def test_maps_at_another_size_are_the_resampled_tables(random_model):
    """At 160x320 the stage-0 maps are (10, 20): query (0,0) sees offsets (|dy|, |dx|) = (row, col)."""
    from levit_np.model.attention_bias import resample_table

    cfg, params = random_model.config, random_model.params
    m = bias_maps(cfg, params, (160, 320), stage=0, block="1")[0]
    want = resample_table(params["stages.0.blocks.1.attn.attention_biases"], 10, 20).reshape(4, 10, 20)
    np.testing.assert_array_equal(m.maps, want)
    shrink = bias_maps(cfg, params, (160, 320), stage=2, block="down")[0]
    assert shrink.key_grid == (5, 10)


def test_cli_exports_npz_and_json(random_model, tmp_path):
    maps = to_arrays(bias_maps(random_model.config, random_model.params))
    result = run("--random", "levit_128s", "--seed", 5, "--out", tmp_path / "b.npz")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "b.npz") as z:
        assert sorted(z.files) == sorted(maps)
        for name in maps:
            np.testing.assert_array_equal(z[name], maps[name], err_msg=name)
    result = run("--random", "128s", "--seed", 5, "--stage", 2, "--block", "down", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["variant"] == "levit_128s" and [m["name"] for m in doc["modules"]] == ["stages.2.downsample.attn"]
    np.testing.assert_allclose(np.array(doc["modules"][0]["maps"]), maps["stages.2.downsample.attn"], rtol=0, atol=1e-6)
    assert doc == to_json(bias_maps(random_model.config, random_model.params, stage=2, block="down"),
                          "levit_128s", (224, 224))


def test_cli_draws_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    target = tmp_path / "bias.png"
    result = run("--random", "levit_128s", "--out", target)
    assert result.exit_code == 0, result.output
    with Image.open(target) as img:
        assert img.format == "PNG" and img.size[0] > 1000 and img.size[1] > 700
        colours = len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0))
    assert colours > 100, "the figure should show many bias values"
    assert [p.name for p in tmp_path.iterdir()] == ["bias.png"]


@pytest.mark.parametrize("args, message", [
    (["--random", "levit_128s", "--out", "maps.txt"], "unknown file type '.txt'"),
    (["--random", "levit_128s", "--stage", "7"], "no attention module matches stage=7"),
    (["--random", "levit_999"], "unknown LeViT variant"),
    (["--random", "levit_128s", "--size", "100", "224"], "multiples of 16"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
