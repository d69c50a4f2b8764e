"""Regenerate the generated parts of docs/: code excerpts in every page, and the CLI reference docs/cli.md.

    python docs/build_docs.py           # rewrite what is stale
    python docs/build_docs.py --check   # exit 1 and name the stale pages (tests/test_docs.py does the same)

Excerpts: a page marks one with `<!-- excerpt: levit_np/model/forward.py::attention_block -->` followed by a fenced
```python block; the block is replaced by the current source of that function or class (a dotted name such
as `LevitModel.__call__` reaches a method), found with `ast`, decorators included. So quoted code cannot drift
from the code that runs.

Shapes: `<!-- shapes: levit_128s 224x224 -->` ... `<!-- /shapes -->` holds a table of every traced output's
shape, recomputed by running the model (random weights) at that size.

Generated blocks: `<!-- generated: NAME ARGS -->` ... `<!-- /generated -->` holds what GENERATORS[NAME](*ARGS)
returns, computed from the code: `variants` (the five variants), `costs levit_128s` (params and FLOPs per part),
`ablations` (Table 5), `params levit_128s stages.1.downsample` (the parameter table under a prefix),
`bias-index` (small examples of the attention-bias index), `folding levit_128s` (what folding BatchNorm removes).

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

GENERATED = re.compile(r"(?P<marker><!-- generated: (?P<name>[\w-]+)(?P<args>(?: [\w.]+)*) -->\n).*?"
                       r"(?P<end><!-- /generated -->)", re.S)


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


def mega(n: float, digits: int = 1) -> str:
    return f"{n / 1e6:,.{digits}f}"


def paper_name(name: str) -> str:
    """'levit_128s' -> 'LeViT-128S'."""
    from levit_np.analysis.architecture_figure import display_name
    from levit_np.model.config import get_config

    return display_name(get_config(name))


def variants_table() -> str:
    """The five variants: widths, heads, depths, key and value widths, attention scale, params and FLOPs."""
    from levit_np.analysis.flops import summary
    from levit_np.model.config import VARIANTS, BlockKind, blocks

    rows = ["| model | C per stage | N heads per stage | X depth per stage | D key dim | d value dim | "
            "shrink heads | scale D^-1/2 | params | FLOPs (MACs) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for cfg in VARIANTS.values():
        s = summary(cfg)
        shrink = [str(b.num_heads) for b in blocks(cfg) if b.kind is BlockKind.SHRINK]
        rows.append(f"| {paper_name(cfg.name)} | {'/'.join(map(str, cfg.embed_dims))} | "
                    f"{'/'.join(map(str, cfg.num_heads))} | {'/'.join(map(str, cfg.depths))} | {cfg.key_dim} | "
                    f"{cfg.attn_ratio * cfg.key_dim} | {'/'.join(shrink)} | {cfg.key_dim ** -0.5:.4g} | "
                    f"{mega(s['params'], 2)}M | {mega(s['flops'])}M |")
    return "\n".join(rows) + "\n"


PART_LABELS = {"stem": "conv stem (section 2)", "attn_linear": "attention qkv and proj linears (section 4)",
               "attn_matmul": "attention products Q K^T, softmax, A V; bias tables (sections 4, 5)",
               "shrink": "shrink attentions (section 7)", "mlp": "MLPs (section 6)",
               "head": "the two heads (section 8)"}


def costs_table(variant: str) -> str:
    """Params and FLOPs of each part of a variant (`levit flops --model VARIANT`'s 'by part'), with shares."""
    from levit_np.analysis.flops import summary
    from levit_np.model.config import get_config

    s = summary(get_config(variant))
    rows = ["| part | params | share | MFLOPs | share |", "|---|---|---|---|---|"]
    for part, v in s["parts"].items():
        rows.append(f"| {PART_LABELS[part]} | {mega(v['params'], 3)}M | {100 * v['params'] / s['params']:.1f}% | "
                    f"{mega(v['macs'])} | {100 * v['macs'] / s['flops']:.1f}% |")
    rows.append(f"| **{paper_name(variant)}** | **{mega(s['params'], 3)}M** | | **{mega(s['flops'])}** | |")
    return "\n".join(rows) + "\n"


def ablations_table() -> str:
    """Table 5: each ablation's params and FLOPs as computed here, the paper's top-1, the loss against the base."""
    from levit_np.analysis.ablations import ABLATIONS, BASE, PAPER_BASE, counts, report

    base = counts(BASE)
    rows = ["| id | LeViT-128S without | params (one head) | MFLOPs | top-1, paper | top-1 lost |",
            "|---|---|---|---|---|---|",
            f"| - | (base model) | {mega(base['params_one_head'], 2)}M | {mega(base['flops'])} | "
            f"{PAPER_BASE['top1']} | |"]
    for ablation in ABLATIONS.values():
        r = report(ablation)
        what = r["title"].removeprefix("without ") + ("" if r["architecture"] else " (training only)")
        rows.append(f"| {r['ablation']} | {what} | {mega(r['params_one_head'], 2)}M | {mega(r['flops'])} | "
                    f"{r['paper_top1']} | {r['paper_top1'] - PAPER_BASE['top1']:+.1f} |")
    return "\n".join(rows) + "\n"


def params_table(variant: str, prefix: str) -> str:
    """Every tensor of the parameter table under `prefix`, name and shape; BatchNorm's four leaves on one row."""
    from levit_np.model.config import get_config
    from levit_np.model.params import BN_LEAVES, param_shapes

    shapes = param_shapes(get_config(variant))
    rows = ["| name | shape |", "|---|---|"]
    for name, shape in shapes.items():
        if not name.startswith(prefix + "."):
            continue
        if name.endswith(BN_LEAVES[1:]):
            continue  # shown on the bn.weight row
        if name.endswith(BN_LEAVES[0]):
            name = name.removesuffix("weight") + "{" + ",".join(leaf.split(".")[1] for leaf in BN_LEAVES) + "}"
        rows.append(f"| `{name}` | {shape} |")
    return "\n".join(rows) + "\n"


def bias_index_example() -> str:
    """`bias_index` printed for a 3x3 grid, its centre query laid on the grid, and a shrink block's stride 2."""
    from levit_np.model.attention_bias import bias_index

    def shown(expression: str, value) -> str:
        return f">>> {expression}\n{value!r}\n"

    full = bias_index((3, 3), (3, 3))
    return ("```python\n"
            + shown("bias_index((3, 3), (3, 3))  # (9 queries, 9 keys): |dy| * 3 + |dx|", full)
            + shown("bias_index((3, 3), (3, 3))[4].reshape(3, 3)  # the centre query, laid on the key grid",
                    full[4].reshape(3, 3))
            + shown("bias_index((2, 2), (3, 3), stride=2)  # shrink: 2x2 queries on keys (0,0) (0,2) (2,0) (2,2)",
                    bias_index((2, 2), (3, 3), stride=2))
            + "```\n")


def folding_summary(variant: str) -> str:
    """What folding removes from `variant`: BatchNorm layers, the activations they touch, their share of work."""
    from levit_np.analysis.flops import costs
    from levit_np.model.config import get_config
    from levit_np.model.params import layer_names, param_shapes

    cfg = get_config(variant)
    shapes = param_shapes(cfg)
    by_name = {c.name: c for c in costs(cfg)}
    normalised = 0  # activations each BatchNorm scales and shifts, per image
    for prefix in layer_names(cfg):
        weight = shapes[f"{prefix}.weight"]
        if prefix in ("head", "head_dist"):
            normalised += weight[1]  # BN before the linear, on the pooled (C,) vector
        else:
            size = 1
            for dim in weight:
                size *= dim
            normalised += by_name[prefix].macs * weight[0] // size  # output elements = MACs * Cout / weight size
    total = sum(c.macs for c in by_name.values())
    return (f"- {paper_name(variant)} has {len(layer_names(cfg))} BatchNorm layers: one after each of its "
            f"{len(layer_names(cfg)) - 2} convs and linears, one before each of its 2 heads.\n"
            f"- Per image they scale and shift {normalised:,} activations: one multiply-add each, "
            f"{100 * normalised / total:.1f}% of the model's {mega(total)}M, but each BatchNorm is a pass of its "
            f"own over memory.\n"
            f"- Folded, each of those layers is one matrix product plus a bias, and the two heads are one linear.\n")


GENERATORS = {"variants": variants_table, "costs": costs_table, "ablations": ablations_table,
              "params": params_table, "bias-index": bias_index_example, "folding": folding_summary}


def generated_block(name: str, args: list[str]) -> str:
    if name not in GENERATORS:
        raise LookupError(f"no generator {name!r}; known: {', '.join(GENERATORS)}")
    return GENERATORS[name](*args)


def render_excerpts(page: str) -> str:
    """The page with every excerpt block replaced by the current source it names, every shapes table rerun and
    every generated block recomputed."""
    page = EXCERPT.sub(lambda m: f"{m['marker']}```python\n{source_of(m['path'], m['name'])}```\n", page)
    page = SHAPES.sub(lambda m: m["marker"] + shapes_table(m["variant"], int(m["h"]), int(m["w"])) + m["end"], page)
    return GENERATED.sub(lambda m: m["marker"] + generated_block(m["name"], m["args"].split()) + m["end"], page)


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
