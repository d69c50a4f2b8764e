"""`levit tradeoff`: Table 3's models on this CPU in every runtime, and the paper's "5x faster" restated."""

from __future__ import annotations

from typing import Optional

import click

from levit_np.perf.tradeoff_worker import RUNTIME_TITLES, RUNTIMES  # light: imports nothing heavy at module level


def _models(ctx, param, value: str):
    from levit_np.perf.published import select

    try:
        return select(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _runtimes(ctx, param, value: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in RUNTIMES]
    if unknown or not names:
        raise click.BadParameter(f"unknown runtime(s) {', '.join(unknown) or '(none)'}; "
                                 f"choose from {', '.join(RUNTIMES)}")
    return tuple(dict.fromkeys(names))


@click.command()
@click.option("--models", "models", default="levit,efficientnet,deit", show_default=True, callback=_models,
              help="Comma-separated families (levit, efficientnet, deit) or models (levit_192, efficientnet_b2, "
                   "deit_tiny, ...).")
@click.option("--runtimes", "runtimes", default=",".join(RUNTIMES), show_default=True, callback=_runtimes,
              help="Comma-separated subset; numba (our fast path) runs LeViT only. Runtimes not installed are "
                   "listed and skipped (pip install 'levit-np[bench]' timm).")
@click.option("-b", "--batch", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Images per call (the paper: 16).")
@click.option("-t", "--threads", type=click.IntRange(1, 256), default=None,
              help="Threads of every worker (the paper: 1). Default: the global --threads, else 1.")
@click.option("--budget", type=click.FloatRange(1, 36000), default=120, show_default=True,
              help="Seconds of timed calls in all, split evenly over pairs and rounds (each pair makes at least "
                   "one call per round; starting the workers comes on top).")
@click.option("--rounds", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Rounds; each times every (model, runtime) pair once, in rotating order.")
@click.option("--ops", is_flag=True,
              help="Instead of images/s: milliseconds per call by kind of operator (depthwise conv, 1x1 conv, "
                   "linear, ...) for each pair in torch, onnxruntime and openvino, over --rounds profiled calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Also draw images/s against top-1 (like the paper's Fig. 1) to this .png, .svg or .pdf file "
                   "(needs matplotlib: pip install 'levit-np[plot]').")
@click.pass_context
def tradeoff(ctx: click.Context, models, runtimes: tuple[str, ...], batch: int, threads: Optional[int],
             budget: float, rounds: int, ops: bool, as_json: bool, plot_path: Optional[str]) -> None:
    """Images/s of the paper's Table 3 models (LeViT, EfficientNet-B0..B4, DeiT) in PyTorch eager, ONNX Runtime,
    OpenVINO f32 and, for LeViT, our numba path; each (model, runtime) in its own process, random weights; runtime
    by runtime, that runtime's models interleaved over rounds (medians and interquartile ranges). Prints them beside Table 3 and restates the paper's claim (LeViT-192 at 80% top-1 is
    5x faster than EfficientNet-B2) with this CPU's numbers."""
    from levit_np.perf.tradeoff import Settings, operator_profile, run_tradeoff

    from .console import print_json

    if ops and plot_path:
        raise click.UsageError("--plot draws images/s; it does not go with --ops")
    if plot_path:  # a bad path or a missing matplotlib fails now, not after minutes of measuring
        from levit_np.perf.tradeoff_plot import FORMATS, require_matplotlib
        from levit_np.weights.fileio import check_output_path

        check_output_path(plot_path, tuple(f".{fmt}" for fmt in FORMATS))
        require_matplotlib()
    from .main import session

    threads = threads or session(ctx).threads or 1
    settings = Settings(models=models, runtimes=runtimes, batch=batch, threads=threads, budget=budget,
                        rounds=rounds)
    if ops:
        result = _measure(settings, lambda s, progress: operator_profile(s, calls=rounds, progress=progress))
        print_json(result) if as_json else _print_operator_tables(result)
        return
    result = _measure(settings, run_tradeoff)
    if plot_path:
        from levit_np.perf.tradeoff_plot import plot_tradeoff
        from levit_np.weights.fileio import atomic_output

        with atomic_output(plot_path) as tmp:
            plot_tradeoff(result, tmp, fmt=plot_path.rsplit(".", 1)[-1].lower())
    if as_json:
        print_json(result)
        return
    _print_skipped(result)
    _print_table(result)
    _print_claims(result)


def _measure(settings, run) -> dict:
    """Run with a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .console import err

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("planning", total=None)

        def progress(text: str, done: int, total: int) -> None:
            bar.update(task, description=text, completed=done, total=total)
        return run(settings, progress)


def _print_skipped(result: dict) -> None:
    from .console import err

    reasons: dict[tuple[str, str], list[str]] = {}
    for model in result["models"]:
        for runtime, value in model["runtimes"].items():
            if "skipped" in value:
                reasons.setdefault((runtime, value["skipped"]), []).append(model["name"])
    for (runtime, reason), names in reasons.items():
        err.print(f"[yellow]not run[/] in {runtime}: {', '.join(names)}: {reason}", highlight=False, soft_wrap=True)


def _print_table(result: dict) -> None:
    from rich import box
    from rich.table import Table

    from .console import out

    runtimes = [r for r in result["runtimes"] if any("img_s" in m["runtimes"].get(r, {}) for m in result["models"])]
    title = (f"Images/s, batch {result['batch']}, {result['threads']} thread(s), {result['cpu']} "
             f"(median, interquartile range in brackets)")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("model", "params M", "FLOPs M", "top-1 %", "input"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for runtime in runtimes:
        table.add_column(RUNTIME_TITLES[runtime], justify="right")
    table.add_column("paper Intel", justify="right")
    for model in sorted(result["models"], key=lambda m: m["flops"]):
        cells = [model["name"], f"{model['params'] / 1e6:.1f}", f"{model['flops'] / 1e6:,.0f}", f"{model['top1']:.1f}",
                 str(model["resolution"] or "")]
        for runtime in runtimes:
            value = model["runtimes"].get(runtime, {})
            cells.append(f"{value['img_s']:.1f} ({value['img_s_p25']:.1f}-{value['img_s_p75']:.1f})"
                         if "img_s" in value else "")
        cells.append(f"{model['paper_intel_img_s']:.1f}")
        table.add_row(*cells)
    table.caption = (f"FLOPs are multiply-adds (LeViT: `levit flops`; others: Table 3). Paper: {result['source']}. "
                     f"Load average {result['load_average_before'][0]:.2f} before, "
                     f"{result['load_average_after'][0]:.2f} after.")
    out.print(table)


def _print_claims(result: dict) -> None:
    from .console import out

    for claim in result["claims"]:
        parts = [f"{RUNTIME_TITLES.get(runtime, 'each in its fastest runtime')} {ratio:.1f}x"
                 for runtime, ratio in claim["ratios"].items()]
        out.print(f"{claim['levit']} ({claim['levit_top1']:.1f}% top-1) vs {claim['efficientnet']} "
                  f"({claim['efficientnet_top1']:.1f}%): paper {claim['paper_ratio']:.1f}x "
                  f"(abstract: {claim['paper_claim']:.0f}x); here " + (", ".join(parts) or "not measured"),
                  highlight=False, soft_wrap=True)


def _print_operator_tables(result: dict) -> None:
    """One table per runtime: a row per kind of operator, a column per model, ms per call and share of the call."""
    from rich import box
    from rich.table import Table

    from .console import err, out

    runtimes = list(dict.fromkeys(r for m in result["models"] for r in m["runtimes"]))
    for runtime in runtimes:
        columns = [m for m in result["models"] if "total" in m["runtimes"].get(runtime, {})]
        for m in result["models"]:
            reason = m["runtimes"].get(runtime, {}).get("skipped")
            if reason:
                err.print(f"[yellow]not profiled[/] {m['name']} in {runtime}: {reason}", highlight=False,
                          soft_wrap=True)
        if not columns:
            continue
        shares = {k: max(m["runtimes"][runtime].get(k, 0.0) / m["runtimes"][runtime]["total"] for m in columns)
                  for m in columns for k in m["runtimes"][runtime] if k != "total"}
        kinds = sorted((k for k in shares if shares[k] >= 0.01), key=lambda k: -shares[k])
        small = [k for k in shares if shares[k] < 0.01]
        table = Table(title=f"{RUNTIME_TITLES[runtime]}: ms per call of {result['batch']} images by kind of operator "
                            f"(share), {result['threads']} thread(s), {result['cpu']}", title_justify="left",
                      box=box.SIMPLE_HEAD)
        table.add_column("operator")
        for m in columns:
            table.add_column(f"{m['name']} ({m['resolution']})", justify="right")
        for kind in kinds + (["smaller ops"] if small else []) + ["total"]:
            cells = []
            for m in columns:
                times = m["runtimes"][runtime]
                value = sum(times.get(k, 0.0) for k in small) if kind == "smaller ops" else times.get(kind)
                cells.append("" if value is None else f"{value * 1e3:,.1f} ({100 * value / times['total']:.0f}%)")
            table.add_row(kind, *cells)
        if small:
            table.caption = f"smaller ops: those under 1% of every column ({', '.join(sorted(small))})"
        out.print(table)
