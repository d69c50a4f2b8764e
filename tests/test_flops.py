"""FLOP and parameter counts against the official counter (external reference values from issue 5 / levit-spec §1.6)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from levit_cli.main import cli
from levit_np.model.config import VARIANTS, get_config
from levit_np.analysis.flops import block_macs, by_key, costs, summary, total_flops
from levit_np.levit_model import LevitModel
from levit_np.model.params import count_params

# The official FLOPS_COUNTER and parameter totals (unfused, both heads), written out here on purpose.
OFFICIAL = {
    "levit_128s": (305_108_946, 7_777_058),
    "levit_128": (406_114_880, 9_213_936),
    "levit_192": (657_601_916, 10_947_069),
    "levit_256": (1_128_024_056, 18_893_876),
    "levit_384": (2_352_935_380, 39_128_836),
}


@pytest.mark.parametrize("variant", list(OFFICIAL))
def test_totals_equal_the_official_counter(variant):
    cfg = get_config(variant)
    flops, params = OFFICIAL[variant]
    assert total_flops(cfg) == flops
    assert sum(c.params for c in costs(cfg)) == params == count_params(cfg)


# levit-spec §1.6: the per-part breakdown, in millions, to the rounding given there.
BREAKDOWN = {
    "levit_128s": {"stem": 48.8, "attn_linear": 59.8, "attn_matmul": 17.6, "shrink": 53.9, "mlp": 124.3,
                   "head": 0.77},
    "levit_256": {"stem": 184.2, "attn_linear": 291.2, "attn_matmul": 66.0, "shrink": 151.7, "mlp": 433.9,
                  "head": 1.0},
}


@pytest.mark.parametrize("variant", list(BREAKDOWN))
def test_per_part_breakdown(variant):
    parts = by_key(costs(get_config(variant)), "part")
    for part, expected in BREAKDOWN[variant].items():
        digits = 2 if expected < 1 else 1
        assert round(parts[part]["macs"] / 1e6, digits) == expected, (part, parts[part]["macs"])


def test_stem_macs_from_first_principles():
    """LeViT-256's stem (the paper's "184 MFLOPs"): four 3x3 stride-2 convs 3->32->64->128->256, 224->14."""
    chans, sides = (3, 32, 64, 128, 256), (112, 56, 28, 14)
    expected = sum(chans[i] * chans[i + 1] * sides[i] ** 2 * 9 for i in range(4))
    assert block_macs(get_config("levit_256"))["stem"] == expected


def test_block_macs_follow_the_trace_names_and_add_up():
    cfg = VARIANTS["levit_128s"]
    per_block = block_macs(cfg)
    model = LevitModel.__new__(LevitModel)
    model.config = cfg
    assert list(per_block) == LevitModel.block_names(model)
    assert sum(per_block.values()) == total_flops(cfg)
    assert per_block["pool"] == 0


def test_attention_block_macs_by_hand():
    """LeViT-128S stage 0 attention: qkv 196*128*256, proj 196*128*128, 4*196^2*(16 + 1 + 32)."""
    macs = block_macs(VARIANTS["levit_128s"])["stages.0.blocks.0.attn"]
    assert macs == 196 * 128 * 256 + 196 * 128 * 128 + 4 * 196 ** 2 * (16 + 1 + 32)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_cli_flops_json_is_exact():
    result = run("flops", "--model", "LeViT-256", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["model"], data["flops"], data["params"]) == ("levit_256", *OFFICIAL["levit_256"])
    assert sum(v["macs"] for v in data["stages"].values()) == data["flops"]
    assert sum(v["macs"] for v in data["blocks"].values()) == data["flops"]


def test_cli_flops_tables():
    result = run("flops")
    assert result.exit_code == 0 and result.output.count("exact") == 5, result.output
    result = run("flops", "--model", "128S", "--layers")
    assert result.exit_code == 0, result.output
    assert "stages.1.downsample.attn.matmul" in result.output and "equal" in result.output


@pytest.mark.parametrize("args, message", [
    (("flops", "--model", "levit_999"), "unknown LeViT variant"),
    (("flops", "--ablation", "A9"), "unknown ablation"),
    (("flops", "--model", "128S", "--ablation", "A1"), "not both"),
    (("flops", "--layers"), "--layers goes with --model"),
])
def test_cli_flops_bad_input_is_one_line(args, message):
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 4, result.output  # usage errors add a usage line


def test_summary_json_layers_cover_the_model():
    s = summary(VARIANTS["levit_192"])
    assert sum(layer["macs"] for layer in s["layers"]) == s["flops"]
    assert np.all([layer["macs"] >= 0 for layer in s["layers"]])
