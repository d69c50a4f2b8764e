"""`levit figure`: the architecture of a variant, drawn from its config like the paper's Fig. 4."""

from __future__ import annotations

from pathlib import Path

import click

from .options import model_name_option

FIGURE_TYPES = (".png", ".svg", ".pdf")


@click.command()
@model_name_option("--model", "model", default="levit_128s", show_default=True, metavar="NAME",
                   help="The LeViT variant to draw.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="The figure file: .png, .svg or .pdf.")
def figure(model: str, out_path: str) -> None:
    """Draw a variant's architecture (stem, stages, shrink attentions, heads) with its widths, heads, depths
    and the FLOPs and parameters of each part. Needs no weights; needs matplotlib (levit-np[plot]).

        levit figure --model levit_256 --out arch.png
    """
    from levit_np.analysis.architecture_figure import render
    from levit_np.model.config import get_config
    from levit_np.weights.fileio import atomic_output, check_output_path

    from .console import err

    check_output_path(out_path, suffixes=FIGURE_TYPES)
    cfg = get_config(model)
    with atomic_output(out_path) as tmp:
        render(cfg, tmp, Path(out_path).suffix.lower().lstrip("."))
    err.print(f"[green]wrote[/] {out_path}: the architecture of {cfg.name}", highlight=False)
