"""`levit export`: weights -> an ONNX file for ONNX Runtime, OpenVINO or any ONNX runtime, without PyTorch."""

from __future__ import annotations

import click

from levit_np.export.settings import DEFAULT_OPSET, DYNAMIC, MAX_OPSET, MIN_OPSET

from .inspect_options import random_model_options
from .options import checked_size, model_name_option, size_option
from .options import crop_pct_option


@click.command()
@click.argument("weights", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), required=True, help="The .onnx file to write.")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True,
              help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET}.")
@click.option("--batch", "batch", default=DYNAMIC, show_default=True, metavar="N|dynamic",
              help="A fixed batch size, or 'dynamic' for a symbolic batch dimension.")
@size_option
@crop_pct_option
@model_name_option("--variant", default=None,
                   help="The variant of a PyTorch checkpoint; inferred from the tensor shapes when omitted.")
@random_model_options
@click.option("--json", "as_json", is_flag=True, help="Print what was exported as JSON.")
def export(weights: str | None, out: str, opset: int, batch: str, size: tuple[int, int] | None, crop_pct: float,
           variant: str | None, random_variant: str | None, seed: int, as_json: bool) -> None:
    """Export WEIGHTS (a levit-np .h5 or any checkpoint `levit convert` reads) to OUT.onnx.

    The graph is written with the onnx package from the folded weights (BatchNorm folded, attention biases
    gathered at the input size, heads merged), standard operators only. Its metadata names the variant, the
    source checkpoint's sha256 and the preprocessing. The same input gives the same bytes.
    """
    from levit_np.export.onnx_export import check_export_output, export_onnx, random_source, read_source
    from levit_np.export.settings import ExportSettings, parse_batch
    from levit_np.model.config import get_config

    from .console import err, print_json

    if (weights is None) == (random_variant is None):
        raise click.UsageError("give either WEIGHTS or --random VARIANT (exactly one)")
    height, width = checked_size(size)
    try:
        cfg = get_config(random_variant) if random_variant is not None else None
        settings = ExportSettings(opset=opset, batch=parse_batch(batch), height=height, width=width,
                                  crop_pct=crop_pct)
        settings.check()
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    check_export_output(out)
    source = random_source(cfg.name, seed) if cfg is not None else read_source(weights, variant)
    with err.status(f"exporting {source.config.name}..."):
        size_bytes = export_onnx(source, out, settings)
    summary = {"output": out, "variant": source.config.name, "opset": settings.opset,
               "batch": DYNAMIC if settings.batch is None else settings.batch,
               "size": [settings.height, settings.width], "bytes": size_bytes, **source.provenance}
    if as_json:
        print_json(summary)
    else:
        err.print(f"[green]exported[/] {source.config.name} ({settings.height}x{settings.width}, batch "
                  f"{summary['batch']}, opset {settings.opset}) -> {out} ({size_bytes / 1e6:.1f} MB)",
                  highlight=False, soft_wrap=True)
