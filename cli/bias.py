"""`levit bias`: the learned attention-bias maps, drawn as the paper's appendix figure or exported as numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .inspect_options import load_any_model, random_model_options, source_label
from .options import checked_size, model_options, size_option, threads_option

FIGURE_TYPES = ("png", "svg", "pdf")
NUMBER_TYPES = ("npz", "json")


@click.command()
@model_options
@random_model_options
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Write the figure (.png, .svg, .pdf) or the numbers (.npz: one (heads, rows, cols) array per "
                   "module; .json).")
@click.option("--stage", type=int, default=None, help="Only this stage (0, 1, 2).")
@click.option("--block", default=None,
              help="Only this block of the stage: its index (0, 1, ...) or 'down' for the shrink attention.")
@size_option
@click.option("--json", "as_json", is_flag=True, help="Print the maps as JSON on stdout.")
@threads_option
def bias(weights: Optional[str], model: Optional[str], random_variant: Optional[str], seed: int,
         out_path: Optional[str], stage: Optional[int], block: Optional[str], size: Optional[tuple[int, int]],
         as_json: bool) -> None:
    """Draw or export the learned attention-bias maps, per attention module and head.

    Each map is the bias that the upper-left query adds towards every key, over the key grid (shrink
    attentions included), as in the paper's appendix figure. Without --out or --json, prints a summary
    table. Needs one of --weights FILE, --model NAME (official weights, downloaded on first use) or
    --random NAME (random weights, offline). Example, the whole figure:

        levit bias --weights levit_128s.h5 --out bias.png
    """
    import json

    import numpy as np

    from levit_np.analysis.bias_maps import bias_maps, render, to_arrays, to_json
    from levit_np.weights.fileio import atomic_output, check_output_path

    from .console import err, print_json

    suffix = Path(out_path).suffix.lower().lstrip(".") if out_path else None
    if suffix is not None and suffix not in FIGURE_TYPES + NUMBER_TYPES:
        raise click.BadParameter(f"unknown file type {Path(out_path).suffix!r}; use one of "
                                 f"{', '.join('.' + t for t in FIGURE_TYPES + NUMBER_TYPES)}", param_hint="--out")
    if out_path:
        check_output_path(out_path)
    height, width = checked_size(size)
    net = load_any_model(weights, model, random_variant, seed, required=True)
    maps = bias_maps(net.config, net.params, (height, width), stage, block)
    document = to_json(maps, net.config.name, (height, width))
    if out_path:
        with atomic_output(out_path) as tmp:
            if suffix == "npz":
                with open(tmp, "wb") as f:
                    np.savez(f, **to_arrays(maps))
            elif suffix == "json":
                tmp.write_text(json.dumps(document) + "\n")
            else:
                title = f"{source_label(weights, model, random_variant, seed)}, input {height}x{width}"
                render(maps, tmp, suffix, title)
        err.print(f"[green]wrote[/] {out_path}: {len(maps)} attention modules, "
                  f"{sum(m.maps.shape[0] for m in maps)} heads", highlight=False)
    if as_json:
        print_json(document)
    elif not out_path:
        _print_summary(maps)


def _print_summary(maps) -> None:
    from .console import show, table as new_table

    table = new_table("stage", "block", "heads", "key grid", "min", "max", "mean", "std", left=2)
    for m in maps:
        table.add_row(str(m.stage), m.block, str(m.maps.shape[0]), "x".join(map(str, m.key_grid)),
                      f"{m.maps.min():+.3f}", f"{m.maps.max():+.3f}", f"{m.maps.mean():+.3f}", f"{m.maps.std():.3f}")
    show(table)
