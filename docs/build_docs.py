"""Regenerate the generated parts of docs/: code excerpts in every page, and the CLI reference docs/cli.md.

    python docs/build_docs.py           # rewrite what is stale
    python docs/build_docs.py --check   # exit 1 and name the stale pages (tests/test_docs.py does the same)

Excerpts: a page marks one with `<!-- excerpt: levit_np/model/forward.py::attention_block -->` followed by a fenced
```python block; the block is replaced by the current source of that function or class (a dotted name such
as `LevitModel.__call__` reaches a method), found with `ast`, decorators included. So quoted code cannot drift
from the code that runs.

Shapes: `<!-- shapes: levit_128s 224x224 -->` ... `<!-- /shapes -->` holds a table of every traced output's
shape, recomputed by running the model (random weights) at that size.

CLI reference: `levit --help` and `levit <command> --help` for every command in `levit_cli.main.COMMANDS`,
rendered by click at a fixed width, so commands added by anyone appear after one rerun.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CLI_PAGE = DOCS / "cli.md"
REGENERATE = "python docs/build_docs.py"
HELP_WIDTH = 100

EXCERPT = re.compile(r"(?P<marker><!-- excerpt: (?P<path>[\w/.-]+)::(?P<name>[\w.]+) -->\n)```python\n.*?```\n",
                     re.S)

SHAPES = re.compile(r"(?P<marker><!-- shapes: (?P<variant>\w+) (?P<h>\d+)x(?P<w>\d+) -->\n).*?(?P<end><!-- /shapes -->)",
                    re.S)


def source_of(path: str, name: str) -> str:
    """The source text of function/class `name` (dotted for methods) in ROOT/path, decorators included."""
    text = (ROOT / path).read_text()
    scope = ast.parse(text).body
    node = None
    for part in name.split("."):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            raise LookupError(f"{path} has no {name!r} (looked for {part!r})")
        scope = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = text.splitlines()[start - 1:node.end_lineno]
    indent = len(lines[0]) - len(lines[0].lstrip())
    return "\n".join(line[indent:] for line in lines) + "\n"


def shapes_table(variant: str, height: int, width: int) -> str:
    """A markdown table of every traced step's output shape (batch 1) for `variant` at height x width."""
    import numpy as np

    import levit_np
    from levit_np.model.grid import token_grids

    model = levit_np.create(variant, seed=0)
    grids = token_grids(model.config, height, width)
    rows = ["| step | output shape | token grid |", "|---|---|---|"]
    for name, value in model.trace(np.zeros((1, 3, height, width), np.float32)).items():
        if name == "stem":
            grid = grids[0]
        elif name.startswith("stages."):
            grid = grids[int(name.split(".")[1])]
        else:
            grid = None  # pool, logits: no grid any more
        rows.append(f"| `{name}` | {tuple(value.shape)} | {'x'.join(map(str, grid)) if grid else ''} |")
    return "\n".join(rows) + "\n"


def render_excerpts(page: str) -> str:
    """The page with every excerpt block replaced by the current source it names, every shapes table rerun."""
    page = EXCERPT.sub(lambda m: f"{m['marker']}```python\n{source_of(m['path'], m['name'])}```\n", page)
    return SHAPES.sub(lambda m: m["marker"] + shapes_table(m["variant"], int(m["h"]), int(m["w"])) + m["end"], page)


def excerpt_names(page: str) -> list[tuple[str, str]]:
    """(path, name) of every excerpt marker in a page."""
    return [(m["path"], m["name"]) for m in EXCERPT.finditer(page)]


def cli_reference() -> str:
    """docs/cli.md: the --help of `levit` and of every command, at a fixed width."""
    from click.testing import CliRunner

    from levit_cli.main import COMMANDS, cli

    parts = ["# `levit` command reference\n",
             f"Generated from `--help` by `{REGENERATE}`; do not edit by hand. Each command's own page in the\n"
             "docs explains it; this is the exact text the installed CLI prints.\n"]
    for args in [[]] + [[name] for name in sorted(COMMANDS)]:
        result = CliRunner().invoke(cli, [*args, "--help"], prog_name="levit", terminal_width=HELP_WIDTH,
                                    max_content_width=HELP_WIDTH)
        if result.exit_code != 0:
            raise RuntimeError(f"levit {' '.join(args)} --help failed: {result.output or result.exception}")
        parts.append(f"## `levit{''.join(' ' + a for a in args)}`\n\n```text\n{result.output.rstrip()}\n```\n")
    return "\n".join(parts)


def generated_pages() -> dict[Path, str]:
    """Every page under docs/ whose generated parts are known: {path: what it should contain}."""
    pages = {path: render_excerpts(path.read_text()) for path in sorted(DOCS.glob("*.md")) if path != CLI_PAGE}
    pages[CLI_PAGE] = cli_reference()
    return pages


def stale_pages() -> list[Path]:
    """The pages whose text differs from what `generated_pages` gives."""
    return [path for path, text in generated_pages().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale pages (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages()
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run: {REGENERATE})")
        return 1 if stale else 0
    for path, text in generated_pages().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
