"""`levit bench`: our backends beside PyTorch eager, ONNX Runtime and OpenVINO, measured side by side."""

from __future__ import annotations

import click

from levit_np.perf.bench import BACKENDS  # light: levit_np.perf.bench imports nothing heavy at module level

from .options import model_name_option


def _backends(ctx, param, value: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise click.BadParameter(f"unknown backend(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(BACKENDS)}")
    return tuple(dict.fromkeys(names))


@click.command()
@model_name_option("--model", "variant", default="levit_128s", show_default=True,
                   help="Variant to time (random weights; speed does not depend on their values).")
@click.option("-b", "--batch", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Images per call for the throughput figure (latency is always batch 1).")
@click.option("-t", "--threads", type=click.IntRange(1, 256), default=None,
              help="Threads for every backend (fixed before each worker imports anything). "
                   "Default: the global --threads, else 1.")
@click.option("--rounds", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Rounds; each round times every backend once, in rotating order.")
@click.option("--seconds", type=click.FloatRange(0.01, 60), default=0.5, show_default=True,
              help="Timed seconds per backend, per round, for each of latency and throughput.")
@click.option("--backends", "backends", default=",".join(BACKENDS), show_default=True, callback=_backends,
              help="Comma-separated subset. torch, onnxruntime and openvino are skipped when not installed "
                   "(pip install 'levit-np[bench]').")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.pass_context
def bench(ctx: click.Context, variant: str, batch: int, threads: int | None, rounds: int, seconds: float,
          backends: tuple[str, ...], as_json: bool) -> None:
    """Latency (batch 1) and throughput (batch N) of a LeViT variant on each backend, each in its own process
    with the same thread count, interleaved over rounds: medians, interquartile ranges, images/s, GFLOP/s and
    the ratios of ours (numba) against each."""
    from levit_np.perf.bench import Settings, run_bench

    from .console import err, print_json

    from .main import session

    threads = threads or session(ctx).threads or 1
    settings = Settings(variant=variant, batch=batch, threads=threads, rounds=rounds,
                        seconds=seconds, backends=backends)
    with err.status("benchmarking...") as status:
        result = run_bench(settings, log=lambda message: status.update(message))
    if as_json:
        print_json(result)
        return
    _print_table(result)


def _print_table(result: dict) -> None:
    from .console import err, show, table as new_table

    title = (f"{result['variant']}: {result['threads']} thread(s), batch 1 and batch {result['batch']}, "
             f"{result['rounds']} rounds ({result['cpu']})")
    table = new_table("backend", "batch 1: ms (IQR)", "ours ÷ this", f"batch {result['batch']}: img/s (IQR)",
                      "ours ÷ this", "GFLOP/s", "max|Δ| vs ours",
                      "max|Δ| vs f64")
    for name, row in result["backends"].items():
        if "skipped" in row:
            err.print(f"[yellow]skipped[/] {name}: {row['skipped']}", highlight=False, soft_wrap=True)
            continue
        lat, thr = row["latency_ms"], row["throughput_img_s"]
        table.add_row(
            name,
            f"{lat['median']:.2f} ({lat['p25']:.2f}-{lat['p75']:.2f})",
            _ratio(row.get("ours_latency_ratio")),
            f"{thr['median']:.1f} ({thr['p25']:.1f}-{thr['p75']:.1f})",
            _ratio(row.get("ours_throughput_ratio")),
            f"{row['gflops_latency']:.0f} | {row['gflops_throughput']:.0f}",
            f"{row['max_rel_diff_vs_ours']:.1e}",
            _relative(row.get("max_rel_diff_vs_float64")),
        )
    table.caption = (f"{result['macs_per_image'] * 2 / 1e9:.3f} GFLOP per image (2 x multiply-adds); "
                     f"this machine's sgemm: {result['sgemm_gflops']:.0f} GFLOP/s at {result['threads']} thread(s). "
                     "Latency ratio < 1: ours is faster; throughput ratio > 1: ours is faster. "
                     "max|Δ|: max|logits - other| / max|other| on one probe image; f64: the NumPy reference in "
                     "float64 (the exact result for these float32 weights).")
    show(table, title)


def _relative(value) -> str:
    return "" if value is None else f"{value:.1e}"


def _ratio(value) -> str:
    return "" if value is None else f"{value:.2f}"
