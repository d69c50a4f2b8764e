"""docs/ cannot drift: quoted code equals the source, shape tables equal a run, cli.md equals every --help."""

from __future__ import annotations

import difflib
import importlib.util
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


def test_method_excerpts_reach_into_classes(build_docs):
    source = build_docs.source_of("levit_np/levit_model.py", "LevitModel.__call__")
    assert source.startswith("def __call__(self") and "forward(" in source
