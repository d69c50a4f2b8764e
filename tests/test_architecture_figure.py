"""`levit figure`: the architecture figure is drawn from the config (its labels change with it) and written whole."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from click.testing import CliRunner

from levit_cli.main import cli
from levit_np.analysis.architecture_figure import architecture_boxes, display_name
from levit_np.analysis.flops import summary
from levit_np.model.config import VARIANTS

# What the paper and the official specification say of two variants (levit-spec §1.1-1.2): widths, heads, depths,
# key dim, the shrink blocks' heads and value widths, and the stem channels.
EXPECTED = {
    "levit_128s": {"C": (128, 256, 384), "N": (4, 6, 8), "X": (2, 3, 4), "D": 16, "shrink": ((8, 64), (16, 64)),
                   "stem": "3→16→32→64→128"},
    "levit_256": {"C": (256, 384, 512), "N": (4, 6, 8), "X": (4, 4, 4), "D": 32, "shrink": ((8, 128), (12, 128)),
                  "stem": "3→32→64→128→256"},
}


def drawn_texts(cfg) -> str:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from levit_np.analysis.architecture_figure import draw, figure_texts

    fig = draw(cfg)
    try:
        return "\n".join(figure_texts(fig))
    finally:
        plt.close(fig)


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_figure_labels_are_the_variants_widths_heads_and_depths(variant):
    want, text = EXPECTED[variant], drawn_texts(VARIANTS[variant])
    for stage, (c, n, x) in enumerate(zip(want["C"], want["N"], want["X"])):
        assert f"stage {stage + 1}" in text and f"stages.{stage}" in text
        assert f"C = {c}" in text and f"N = {n} heads" in text and f"{x} x (attention + MLP)" in text, stage
    assert f"D = {want['D']}, d = {2 * want['D']}" in text
    for heads, d in want["shrink"]:
        assert f"N = {heads} heads, D = {want['D']}, d = {d}" in text
    assert want["stem"] in text and "14x14 = 196 tokens" in text and "4x4 = 16 tokens" in text
    s = summary(VARIANTS[variant])
    title = f"{display_name(VARIANTS[variant])}: {s['params'] / 1e6:.2f}M parameters, {s['flops'] / 1e6:.1f} MFLOPs"
    assert title in text


def test_figure_follows_an_edited_config():
    """A config with other numbers draws other labels: nothing in the figure is written for the five variants."""
    cfg = dataclasses.replace(VARIANTS["levit_128s"], name="levit_custom", embed_dims=(96, 160, 224),
                              num_heads=(3, 5, 7), depths=(1, 2, 5))
    text = drawn_texts(cfg)
    for c, n, x in zip((96, 160, 224), (3, 5, 7), (1, 2, 5)):
        assert f"C = {c}" in text and f"N = {n} heads" in text and f"{x} x (attention + MLP)" in text
    assert "C = 128" not in text and "3→12→24→48→96" in text and "levit_custom" in text


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_boxes_account_for_every_flop_and_parameter(variant):
    """The per-box costs printed in the figure sum to the model's totals (the official counter's, levit-spec §1.6)."""
    cfg = VARIANTS[variant]
    boxes, s = architecture_boxes(cfg), summary(cfg)
    assert [b.kind for b in boxes] == ["input", "stem", "stage", "shrink", "stage", "shrink", "stage", "head"]
    assert sum(b.macs for b in boxes) == s["flops"] == s["official_flops"]
    assert sum(b.params for b in boxes) == s["params"] == s["official_params"]
    assert [b.side for b in boxes if b.kind == "stage"] == [14, 7, 4]


def test_levit_256_stem_is_the_papers_184_mflops():
    """Paper Fig. 4: LeViT-256's stem costs 184 MFLOPs."""
    stem = architecture_boxes(VARIANTS["levit_256"])[1]
    assert stem.kind == "stem" and round(stem.macs / 1e6) == 184


def test_cli_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    target = tmp_path / "arch.png"
    result = CliRunner().invoke(cli, ["figure", "--model", "256", "--out", str(target)])
    assert result.exit_code == 0, result.output
    with Image.open(target) as img:
        assert img.format == "PNG" and img.size[0] > 1000 and img.size[1] > 300
        colours = len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0))
    assert colours > 5, "the figure should show coloured boxes and text"
    assert [p.name for p in tmp_path.iterdir()] == ["arch.png"]  # no temporary file left beside it


@pytest.mark.parametrize("args, message", [
    (["--out", "arch.txt"], "must end in .png or .svg or .pdf"),
    (["--model", "levit_999", "--out", "arch.png"], "unknown LeViT variant"),
    (["--out", "missing/arch.png"], "does not exist"),
    ([], "Missing option '--out'"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["figure", *args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
