"""`levit convert`: a PyTorch checkpoint (official, timm or Hugging Face) -> a levit-np HDF5 file."""

from __future__ import annotations

import click

from .options import model_name_option

OUTPUT_SUFFIXES = (".h5", ".hdf5")


@click.command()
@click.argument("src", type=click.Path())
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), required=True,
              help="The levit-np HDF5 weights file to write (its name must end in .h5 or .hdf5).")
@model_name_option("--variant", default=None,
                   help="The LeViT variant it must be; inferred from the tensor shapes when omitted.")
@click.option("--json", "as_json", is_flag=True, help="Print what was converted as JSON.")
def convert(src: str, out: str, variant: str | None, as_json: bool) -> None:
    """Convert SRC (.pth, .bin or .safetensors) to OUT.h5, without PyTorch and without running pickled code.

    SRC may be an official facebookresearch release file, a timm state dict or a Hugging Face
    transformers LeViT checkpoint. Every tensor is checked; nothing is written unless all of them fit. The
    class count comes from the head's shape, so a fine-tuned LeViT converts too.
    """
    from pathlib import Path

    from levit_np.weights.convert import convert_checkpoint

    from .console import err, print_json

    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"{out}: levit convert writes a levit-np HDF5 weights file, so the name must end "
                                 f"in .h5 (or .hdf5)", param_hint="-o/--out")
    result = convert_checkpoint(src, out, variant)
    summary = {"source": src, "output": out, "layout": result.layout.name, "variant": result.config.name,
               "num_classes": result.config.num_classes, "tensors": len(result.params), "source_keys": result.source_keys, "ignored_keys": len(result.ignored)}
    if as_json:
        print_json(summary)
    else:
        classes = "" if result.config.num_classes == 1000 else f" with {result.config.num_classes} classes"
        err.print(f"[green]converted[/] {src} ({result.layout.description}) -> {out}: {result.config.name}{classes}, "
                  f"{len(result.params)} tensors ({len(result.ignored)} source keys ignored: index buffers and "
                  f"BN counters)", highlight=False)
