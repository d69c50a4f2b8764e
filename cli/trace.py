"""`levit trace`: one image through the model, block by block: shapes, statistics, times, and the PyTorch diff."""

from __future__ import annotations

from typing import Optional

import click

from .backend_option import backend_option
from .inspect_options import load_any_model, random_model_options
from .options import checked_size, crop_pct_option, model_options, size_option, threads_option

DIVERGENCE = 1e-4  # relative difference above which a block counts as parting from the reference


@click.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@model_options
@random_model_options
@size_option
@crop_pct_option
@click.option("--against-torch", is_flag=True,
              help="Also run the official architecture in PyTorch (Hugging Face transformers) with the same "
                   "weights and print the max difference per block. Needs levit-np[reference]; square sizes only.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None,
              help="Keep every intermediate in this .npz (the input as 'input'; the reference's as 'torch/<name>').")
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
@threads_option
def trace(image: str, weights: Optional[str], model: Optional[str], random_variant: Optional[str], seed: int,
          size: Optional[tuple[int, int]], crop_pct: float, against_torch: bool, save_path: Optional[str],
          backend: str, as_json: bool) -> None:
    """Run IMAGE block by block: shape, mean, std, min, max and time of every output.

    Times are from a second pass (the first fills the attention-bias cache). With --against-torch the last
    columns show max|ours - torch| per block, absolute and relative to max|torch|; the first block above
    1e-4 is where the two implementations part.
    """
    import numpy as np

    from levit_np.images.preprocessing import preprocess_hw
    from levit_np.analysis.tracing import first_divergence, max_differences
    from levit_np.perf.model_profile import timed_trace

    from .compiling import compile_notice
    from .console import err, print_json

    from levit_np.weights.fileio import atomic_output, check_output_path

    if save_path:
        check_output_path(save_path, suffixes=(".npz",))
    height, width = checked_size(size)
    net = load_any_model(weights, model, random_variant, seed, backend)
    x = preprocess_hw(image, height, width, crop_pct)[None]  # (1, 3, H, W)
    with compile_notice():
        steps = timed_trace(net, x)
    reference = diffs = None
    if against_torch:
        from levit_np.analysis.torch_reference import hf_model, hf_trace

        reference = hf_trace(hf_model(net.config, net.params, (height, width)), net.config, x)
        diffs = max_differences(steps, reference)
    if save_path:
        arrays = {"input": x, **{step.name: step.value for step in steps}}
        arrays.update({f"torch/{name}": value for name, value in (reference or {}).items()})
        with atomic_output(save_path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        err.print(f"[green]wrote[/] {save_path}: {len(arrays)} arrays", highlight=False)
    if as_json:
        print_json({"image": image, "variant": net.config.name, "backend": net.active_backend, "input_size": [height, width],
                    "blocks": [{"name": s.name, **s.stats(), "ms": s.seconds * 1e3,
                                **({"max_diff": diffs[s.name][0], "rel_diff": diffs[s.name][1]}
                                   if diffs and diffs[s.name] else {})} for s in steps]})
        return
    _print_table(image, net.config.name, (height, width), steps, diffs)
    if diffs is not None:
        parted = first_divergence(diffs, DIVERGENCE)
        err.print(f"first block above {DIVERGENCE:g} relative difference: {parted}" if parted else
                  f"every block within {DIVERGENCE:g} of PyTorch (max relative difference "
                  f"{max(d[1] for d in diffs.values()):.2g})", highlight=False)


def _print_table(image: str, variant: str, size: tuple[int, int], steps, diffs) -> None:
    from .console import show, table as new_table

    columns = ("block", "shape", "mean", "std", "min", "max", "ms")
    table = new_table(*columns, *(("max|diff| torch", "relative") if diffs is not None else ()), left=2)
    for step in steps:
        s = step.stats()
        row = [step.name, "x".join(map(str, s["shape"])), f"{s['mean']:+.4f}", f"{s['std']:.4f}",
               f"{s['min']:+.3f}", f"{s['max']:+.3f}", f"{step.seconds * 1e3:.2f}"]
        if diffs is not None:
            d = diffs[step.name]
            row += ["-", "-"] if d is None else [f"{d[0]:.2e}", f"{d[1]:.2e}"]
        table.add_row(*row)
    show(table, title=f"{image}: {variant} at {size[0]}x{size[1]}")
