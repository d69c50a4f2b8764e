"""`levit convert`: a PyTorch checkpoint (official, timm or Hugging Face) -> a levit-np HDF5 file."""

from __future__ import annotations

import click

from levit_np.model.config import VARIANTS


@click.command()
@click.argument("src", type=click.Path())
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), required=True, help="The .h5 file to write.")
@click.option("--variant", type=click.Choice(list(VARIANTS)), default=None,
              help="The LeViT variant; inferred from the tensor shapes when omitted.")
@click.option("--json", "as_json", is_flag=True, help="Print what was converted as JSON.")
def convert(src: str, out: str, variant: str | None, as_json: bool) -> None:
    """Convert SRC (.pth, .bin or .safetensors) to OUT.h5, without PyTorch and without running pickled code.

    SRC may be an official facebookresearch release file, a timm state dict or a Hugging Face
    transformers LeViT checkpoint. Every tensor is checked; nothing is written unless all of them fit.
    """
    from levit_np.weights.convert import convert_checkpoint

    from .console import err, print_json

    result = convert_checkpoint(src, out, variant)
    summary = {"source": src, "output": out, "layout": result.layout.name, "variant": result.config.name,
               "tensors": len(result.params), "source_keys": result.source_keys, "ignored_keys": len(result.ignored)}
    if as_json:
        print_json(summary)
    else:
        err.print(f"[green]converted[/] {src} ({result.layout.description}) -> {out}: {result.config.name}, "
                  f"{len(result.params)} tensors ({len(result.ignored)} source keys ignored: index buffers and "
                  f"BN counters)", highlight=False)
