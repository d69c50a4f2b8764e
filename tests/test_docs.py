"""docs/ cannot drift: quoted code equals the source, shape tables equal a run, cli.md equals every --help."""

from __future__ import annotations

import difflib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REGENERATE = "python docs/build_docs.py"


@pytest.fixture(scope="module")
def build_docs():
    spec = importlib.util.spec_from_file_location("build_docs", DOCS / "build_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def explain(path: Path, want: str) -> str:
    diff = difflib.unified_diff(path.read_text().splitlines(), want.splitlines(), "in the repo", "generated",
                                lineterm="", n=1)
    return (f"{path.relative_to(ROOT)} is out of date: regenerate it with `{REGENERATE}` and commit it.\n"
            + "\n".join(list(diff)[:40]))


@pytest.mark.parametrize("page", ["guided-reading.md", "input-sizes.md"])
def test_pages_exist_and_their_excerpts_are_current(build_docs, page):
    path = DOCS / page
    text = path.read_text()
    want = build_docs.render_excerpts(text)
    assert text == want, explain(path, want)


def test_guided_reading_quotes_every_step_of_the_forward_pass(build_docs):
    names = {name for _, name in build_docs.excerpt_names((DOCS / "guided-reading.md").read_text())}
    for needed in ("forward", "stem", "attention_block", "shrink_attention_block", "subsample", "mlp_block",
                   "attention", "linear_bn", "classifier", "bias_index", "resample_table"):
        assert needed in names, needed


def test_guided_reading_explains_why(build_docs):
    """The student's page keeps its generated tables (variants, costs, Table 5, the parameter table, the bias
    index, folding) and quotes the pyramid, the parameter table and the folding code."""
    text = (DOCS / "guided-reading.md").read_text()
    generated = {m["name"] for m in build_docs.GENERATED.finditer(text)}
    assert generated == set(build_docs.GENERATORS), generated
    names = {name for _, name in build_docs.excerpt_names(text)}
    for needed in ("blocks", "block_layers", "prepare", "bn_scale_shift", "fold_bn_after", "fold_bn_before",
                   "fold_query_scale", "merge_heads"):
        assert needed in names, needed
    assert "img/architecture-levit_128s.png" in text and "random weights" in text


def test_variants_table_gives_the_official_counts(build_docs):
    """The generated variants table shows the official counter's totals (external values, levit-spec §1.6)."""
    from levit_np.analysis.flops import OFFICIAL_FLOPS, OFFICIAL_PARAMS

    table = build_docs.variants_table()
    for name, paper_name in (("levit_128s", "LeViT-128S"), ("levit_256", "LeViT-256"), ("levit_384", "LeViT-384")):
        row = next(line for line in table.splitlines() if line.startswith(f"| {paper_name} |"))
        assert f"| {OFFICIAL_PARAMS[name] / 1e6:.2f}M | {OFFICIAL_FLOPS[name] / 1e6:,.1f}M |" in row, row
    assert "| LeViT-256 | 256/384/512 | 4/6/8 | 4/4/4 | 32 | 64 | 8/12 |" in table


def test_images_the_pages_show_exist():
    for page in sorted(DOCS.glob("*.md")):
        for target in re.findall(r"!\[[^]]*\]\(([^)]+)\)", page.read_text()):
            assert (DOCS / target).is_file(), f"{page.name} shows {target}, which does not exist"


def test_cli_reference_is_current(build_docs):
    want = build_docs.cli_reference()
    assert (DOCS / "cli.md").read_text() == want, explain(DOCS / "cli.md", want)


def test_cli_reference_covers_every_command(build_docs):
    from levit_cli.main import COMMANDS

    text = (DOCS / "cli.md").read_text()
    for name in COMMANDS:
        assert f"## `levit {name}`" in text, f"docs/cli.md lacks `levit {name}`: run `{REGENERATE}`"


def test_a_drifted_excerpt_is_detected(build_docs):
    """The check can fail: an excerpt that differs from the source is rewritten, and an unknown name is an error."""
    page = ("<!-- excerpt: levit_np/model/attention_bias.py::bias_index -->\n```python\ndef bias_index(): pass\n```\n"
            "<!-- shapes: levit_128s 64x96 -->\nstale\n<!-- /shapes -->\n")
    rendered = build_docs.render_excerpts(page)
    assert rendered != page and "return dy * k_grid[1] + dx" in rendered
    assert "| `stem` | (1, 128, 4, 6) | 4x6 |" in rendered  # 64x96: 4x6 tokens, then 2x3, then 1x2
    assert "| `stages.2.blocks.0.attn` | (1, 2, 384) | 1x2 |" in rendered and "stale" not in rendered
    with pytest.raises(LookupError, match="no 'nonexistent'"):
        build_docs.render_excerpts("<!-- excerpt: levit_np/model/forward.py::nonexistent -->\n```python\n```\n")


def test_a_stale_generated_block_is_recomputed(build_docs):
    """A generated block that no longer matches the code is rewritten; an unknown generator is an error."""
    page = ("<!-- generated: bias-index -->\nstale\n<!-- /generated -->\n"
            "<!-- generated: params levit_128s stages.2.blocks.3.attn -->\n<!-- /generated -->\n")
    rendered = build_docs.render_excerpts(page)
    assert "stale" not in rendered and "array([[4, 3, 4],\n       [1, 0, 1],\n       [4, 3, 4]])" in rendered
    assert "| `stages.2.blocks.3.attn.attention_biases` | (8, 16) |" in rendered
    assert "| `stages.2.blocks.3.attn.qkv.weight` | (512, 384) |" in rendered  # levit-spec §1.9
    with pytest.raises(LookupError, match="no generator 'nonexistent'"):
        build_docs.render_excerpts("<!-- generated: nonexistent -->\n<!-- /generated -->\n")


def test_method_excerpts_reach_into_classes(build_docs):
    source = build_docs.source_of("levit_np/levit_model.py", "LevitModel.__call__")
    assert source.startswith("def __call__(self") and "forward(" in source
