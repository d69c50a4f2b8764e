"""`levit profile`: measured time, block by block (--model), the paper's block table (--blocks), Table 5 latencies."""

from __future__ import annotations

import os
import sys
from typing import Optional

import click

from .backend_option import backend_option
from .flops import ABLATION_HELP, ABLATION_TITLE, ablation_table, print_notes
from .options import model_name_option, threads_option

ROW_LABELS = {"layernorm": "LayerNorm", "keys_qk": "Keys Q,K", "values_v": "Values V", "product_qkt": "Product QK^T",
              "product_av": "Product attention AV", "attention_projection": "Attention projection", "mlp": "MLP",
              "total": "Total"}


@click.command()
@click.option("--blocks", "blocks_table", is_flag=True,
              help="The paper's block-timing table: a DeiT-tiny and a LeViT-256 stage-1 block, piece by piece.")
@model_name_option("--model", "model", default=None, help="Profile this variant, with random weights.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Profile the model in this file (.h5 or a checkpoint) instead of a random-weight --model.")
@click.option("--ablation", default=None, metavar="ID", help=ABLATION_HELP + " Measures its latency and the base's.")
@backend_option
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Images per forward pass.")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="Timed runs (default: 200 for --blocks, 20 for --model, 10 for --ablation).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="With --model/--weights: write a PNG of the per-stage and per-block breakdown (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@threads_option
@click.pass_context
def profile(ctx: click.Context, blocks_table: bool, model: Optional[str], weights: Optional[str],
            ablation: Optional[str], backend: str, batch: int, repeats: Optional[int], plot: Optional[str],
            as_json: bool) -> None:
    """Measure where the time goes, on this CPU, with one thread unless --threads says otherwise.

    --blocks: the paper's supplementary block table. --model NAME: every named block of a whole model, grouped
    by stage, with its share, multiply-adds and GFLOP/s. --ablation ID: a Table 5 ablation's latency.
    """
    modes = sum((blocks_table, model is not None or weights is not None, ablation is not None))
    if modes != 1:
        raise click.UsageError("give exactly one of --blocks, --model NAME (or --weights FILE), --ablation ID")
    if model is not None and weights is not None:
        raise click.UsageError("give either --model NAME or --weights FILE, not both")
    if plot is not None and (blocks_table or ablation is not None):
        raise click.UsageError("--plot goes with --model or --weights")
    threads = single_thread_default(ctx)  # before anything imports numpy (matplotlib does)
    if plot is not None:
        check_plot_target(plot)
    if blocks_table:
        return blocks_command(repeats or 200, as_json, threads)
    if ablation is not None:
        if backend == "auto":
            backend = "numpy"  # the rule: numba does not run the ablation models, and base and ablations compare alike
        return ablation_command(ablation, backend, batch, repeats or 10, as_json, threads)
    model_command(model, weights, backend, batch, repeats or 20, plot, as_json, threads)


def single_thread_default(ctx: click.Context) -> str:
    """Pin one thread when --threads was not given (the paper's CPU setting); say what is in force."""
    from .main import session, set_threads

    if session(ctx).threads is None and "numpy" not in sys.modules:
        set_threads(1)
    return os.environ.get("OPENBLAS_NUM_THREADS", "library default")


def check_plot_target(path: str) -> None:
    """Fail before measuring: matplotlib must import and the target must be a writable .png, .svg or .pdf."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise click.ClickException("--plot needs matplotlib: pip install 'levit-np[plot]'") from None
    from levit_np.weights.fileio import check_output_path

    check_output_path(path, suffixes=(".png", ".svg", ".pdf"))


def blocks_command(repeats: int, as_json: bool, threads: str) -> None:
    from levit_np.perf.block_table import profile_blocks

    from .console import err, line, print_json, show

    err.print(f"timing two blocks, {repeats} runs each, {threads} thread(s)...", highlight=False)
    result = profile_blocks(repeats=repeats)
    if as_json:
        print_json(result)
        return
    show(blocks_rich_table(result), "Block timings at 14x14 tokens, batch 1, µs (paper: supplementary Table 1)")
    if result["backends"]:
        show(backends_rich_table(result), "LeViT-256 block through each backend's kernels, µs")
    deit, levit = result["blocks"]["deit_tiny"]["total"], result["blocks"]["levit_256"]["total"]
    paper = result["paper_us"]
    line(f"LeViT block / DeiT block: ours {levit / deit:.2f}, paper "
         f"{paper['levit_256']['total'] / paper['deit_tiny']['total']:.2f}. "
         f"Sum of rows: DeiT {result['sum_of_rows_us']['deit_tiny']:.0f} µs, "
         f"LeViT {result['sum_of_rows_us']['levit_256']:.0f} µs.")
    where = "; ".join(f"{what}: {row}" for what, row in result["counted_in"].items())
    line(f"Rows without their own line are timed in: {where}.")
    line(f"{result['cpu']}, {threads} thread(s), batch 1, median of {repeats} runs (± half the "
         f"interquartile range); paper: Intel Xeon E5-2698, one core.")


def blocks_rich_table(result: dict):
    """The paper's table: component rows, DeiT-tiny and LeViT-256 columns, paper beside ours, MACs per row."""
    from .console import table as new_table

    table = new_table("component", *(f"{block}\n{column}" for block in ("DeiT", "LeViT")
                                     for column in ("paper", "ours", "MMACs")))
    for row, label in ROW_LABELS.items():
        cells = [label]
        for block in ("deit_tiny", "levit_256"):
            paper = result["paper_us"][block].get(row)
            ours = result["blocks"][block].get(row)
            macs = result["macs"][block].get(row)
            cells += ["-" if paper is None else f"{paper}",
                      "-" if ours is None else f"{ours:.0f}±{result['spread_us'][block][row] / 2:.0f}",
                      "-" if not macs else f"{macs / 1e6:.2f}"]
        table.add_row(*cells, end_section=row == "mlp")
    table.caption = "ours: numpy + BLAS, LeViT BatchNorm folded; DeiT with Hardswish in place of GELU, as the paper"
    return table


def backends_rich_table(result: dict):
    """The LeViT block through each backend's kernels, beside the split numpy block of the first table."""
    from levit_np.perf.block_table import BACKEND_ROWS

    from .console import table as new_table

    split = result["blocks"]["levit_256"]
    merged = {BACKEND_ROWS[0]: ("keys_qk", "values_v"), BACKEND_ROWS[1]: ("product_qkt", "product_av"),
              BACKEND_ROWS[2]: ("attention_projection",), BACKEND_ROWS[3]: ("mlp",), BACKEND_ROWS[4]: ("total",)}
    labels = {BACKEND_ROWS[0]: "Q,K,V (one qkv product)", BACKEND_ROWS[1]: "QK^T, bias, softmax, AV",
              BACKEND_ROWS[2]: "Attention projection", BACKEND_ROWS[3]: "MLP", BACKEND_ROWS[4]: "Total"}
    table = new_table("component", "split numpy\n(above)", *(f"{name}\nkernels" for name in result["backends"]))
    for row, parts in merged.items():
        cells = [labels[row], f"{sum(split[p] for p in parts):.0f}"]
        for name, rows in result["backends"].items():
            cells.append(f"{rows[row]:.0f}±{result['backend_spread_us'][name][row] / 2:.0f}")
        table.add_row(*cells, end_section=row == BACKEND_ROWS[3])
    table.caption = "kernels: the forward pass's own block, one call per kernel, BatchNorm as each backend runs it"
    return table


def model_command(model: Optional[str], weights: Optional[str], backend: str, batch: int, repeats: int,
                  plot: Optional[str], as_json: bool, threads: str) -> None:
    import levit_np
    from levit_np.weights.fileio import atomic_output
    from levit_np.perf.model_profile import plot_profile, profile_model

    from .compiling import compile_notice
    from .console import err, print_json, show

    net = levit_np.load(weights, backend) if weights is not None else levit_np.create(model, backend=backend)
    if backend == "auto":  # the rule, by the command's work: every timed pass at this batch size
        from levit_np.kernels.backends import auto_backend
        from levit_np.levit_model import LevitModel

        size = net.config.img_size
        backend = auto_backend(net.config, net.macs(batch, size, size) * repeats)
        net = LevitModel(net.config, net.params, backend, source=net.source, weights_file=net.weights_file)
    err.print(f"profiling {net.config.name} ({backend}), batch {batch}, {repeats} runs, {threads} thread(s)...",
              highlight=False)
    with compile_notice():
        result = profile_model(net, batch=batch, repeats=repeats)
    result["threads"] = threads
    if plot is not None:
        with atomic_output(plot) as tmp:
            plot_profile(result, tmp, os.path.splitext(plot)[1].lstrip(".").lower())
        err.print(f"wrote {plot}", highlight=False)
    if as_json:
        print_json(result)
        return
    show(model_rich_table(result), f"{result['model']} ({result['backend']}), batch {result['batch']}: "
                                   f"{result['total_us'] / 1e3:.2f} ms (sum of block medians; whole pass "
                                   f"{result['whole_pass_us'] / 1e3:.2f} ms), {result['gflops']:.1f} GFLOP/s")


def model_rich_table(result: dict):
    from .console import table as new_table

    table = new_table("stage / block", "µs", "±", "share %", "MMACs", "GFLOP/s")
    stages = {s["stage"]: s for s in result["stages"]}
    current = None
    for row in result["blocks"]:
        if row["stage"] != current:
            current = row["stage"]
            s = stages[current]
            table.add_row(f"[bold]{current}[/]", f"[bold]{s['time_us']:.0f}[/]", "",
                          f"[bold]{100 * s['share']:.1f}[/]", f"[bold]{s['macs'] / 1e6:.1f}[/]",
                          f"[bold]{s['gflops']:.1f}[/]")
        table.add_row(f"  {row['name']}", f"{row['time_us']:.0f}", f"{row['spread_us'] / 2:.0f}",
                      f"{100 * row['share']:.1f}", f"{row['macs'] / 1e6:.1f}" if row["macs"] else "-",
                      f"{row['gflops']:.1f}" if row["macs"] else "-")
    table.caption = (f"median of {result['repeats']} passes, ± half the interquartile range; GFLOP/s counts 2 per "
                     f"multiply-add; {result['threads']} thread(s)")
    return table


def ablation_command(ablation: str, backend: str, batch: int, repeats: int, as_json: bool, threads: str) -> None:
    from levit_np.perf.model_profile import ablation_latencies

    from .console import err, line, print_json, show

    err.print(f"timing {ablation} and the base model ({backend}), batch {batch}, {repeats} interleaved runs, "
              f"{threads} thread(s)...", highlight=False)
    reports = ablation_latencies(ablation, backend, batch, repeats)
    if as_json:
        print_json({"backend": backend, "batch": batch, "repeats": repeats, "threads": threads,
                    "ablations": reports})
        return
    latencies = {"base": reports[0]["base_latency_ms"], **{r["ablation"]: r["latency_ms"] for r in reports}}
    show(ablation_table(reports, latencies), ABLATION_TITLE)
    print_notes(reports)
    line(f"latency: median ms per pass of batch {batch} ± half the interquartile range, {repeats} interleaved "
         f"runs, {backend} backend, {threads} thread(s); random weights (accuracy needs training)")
