"""`levit info`: what a levit-np weights file holds."""

from __future__ import annotations

import click


@click.command()
@click.argument("path", type=click.Path())
@click.option("--tensors", is_flag=True, help="List every tensor with its shape.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info(path: str, tensors: bool, as_json: bool) -> None:
    """Show the variant, provenance and tensors of PATH (.h5 written by `levit convert`)."""
    import numpy as np

    from levit_np.model.params import count_params
    from levit_np.weights.hdf5_file import read_info

    from .console import print_json, show, table

    meta, shapes = read_info(path)
    cfg = meta.config
    values = sum(int(np.prod(shape)) for shape, _ in shapes.values())
    summary = {
        "path": path,
        "variant": cfg.name,
        "format_version": meta.format_version,
        "params": count_params(cfg),
        "tensors": len(shapes),
        "values_stored": values,
        **{key: value for key, value in meta.attrs.items() if key not in ("format", "format_version", "config")},
        "config": cfg.to_dict(),
    }
    if as_json:
        if tensors:
            summary["tensor_shapes"] = {name: list(shape) for name, (shape, _) in shapes.items()}
        print_json(summary)
        return
    facts = table("field", "value", left=2, header=False)
    for key, value in summary.items():
        if key != "config":
            facts.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    facts.add_row("stages (C / heads / depth)", " | ".join(
        f"{c} / {h} / {d}" for c, h, d in zip(cfg.embed_dims, cfg.num_heads, cfg.depths)))
    facts.add_row("key dim D", str(cfg.key_dim))
    show(facts, title=path)
    if tensors:
        listing = table("tensor", "shape", "dtype", left=3)
        for name, (shape, dtype) in shapes.items():
            listing.add_row(name, str(tuple(shape)), dtype)
        show(listing)
