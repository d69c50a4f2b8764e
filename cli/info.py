"""`levit info`: what a levit-np weights file holds."""

from __future__ import annotations

import click


@click.command()
@click.argument("path", type=click.Path())
@click.option("--tensors", is_flag=True, help="List every tensor with its shape.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info(path: str, tensors: bool, as_json: bool) -> None:
    """Show the variant, provenance and tensors of PATH (.h5 written by `levit convert`). For a checkpoint
    (.pth, .bin, .safetensors): its format, key layout, variant and class count, and how to convert it."""
    import os

    import numpy as np

    from levit_np.model.params import count_params
    from levit_np.weights.fileio import is_hdf5
    from levit_np.weights.hdf5_file import read_info

    from .console import print_json, show, table

    if os.path.isfile(path) and not is_hdf5(path):
        return checkpoint_info(path, as_json)

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


def checkpoint_info(path: str, as_json: bool) -> None:
    """What a PyTorch or safetensors checkpoint holds (read safely, as `levit convert` reads it)."""
    from pathlib import Path

    from levit_np.weights.convert import describe_checkpoint

    from .console import line, print_json, show, table

    summary = describe_checkpoint(path)
    target = Path(path).with_suffix(".h5").name
    summary["convert"] = f"levit convert {path} -o {target}" if "problem" not in summary else None
    if as_json:
        print_json(summary)
        return
    if "problem" in summary:
        what = f"a {summary['format']} checkpoint" + (f" in the {summary['layout']} layout" if summary["layout"] else "")
        line(f"{path} is {what}, not a levit-np weights file, and it does not convert: {summary['problem']}")
        return
    classes = "ImageNet's 1000 classes" if summary["num_classes"] == 1000 else f"{summary['num_classes']} classes"
    line(f"{path} is a {summary['format']} checkpoint, not a levit-np weights file: {summary['variant']} weights "
         f"({summary['layout_description']}), {classes}.")
    facts = table("field", "value", left=2, header=False)
    for key in ("format", "layout", "variant", "num_classes", "tensors", "values_stored", "ignored_keys"):
        value = summary[key]
        facts.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    show(facts)
    line(f"convert it: {summary['convert']}")
