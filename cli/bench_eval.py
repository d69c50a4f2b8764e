"""`levit bench-eval`: `levit eval` end to end against a plain PyTorch evaluation script (wall time, start-up
included), the marginal rate against the cores' bound, and peak memory at two dataset sizes."""

from __future__ import annotations

import click


@click.command(name="bench-eval")
@click.argument("photos", type=click.Path(exists=True, file_okay=False))
@click.option("--work", type=click.Path(file_okay=False), default=None,
              help="Folder for the generated datasets and weights (kept, reused by later runs). Default: a "
                   "temporary folder, removed afterwards.")
@click.option("--sizes", default="500,1000", show_default=True,
              help="Two dataset sizes: both are timed, the marginal rate is taken between them.")
@click.option("--memory-size", type=click.IntRange(min=0), default=5000, show_default=True,
              help="A larger size whose peak memory is compared with the first size's (0: skip).")
@click.option("--rounds", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Rounds; every contender runs once per round, medians are reported.")
@click.option("--no-torch", is_flag=True, help="Only time levit eval (no PyTorch script).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def bench_eval(photos: str, work: str | None, sizes: str, memory_size: int, rounds: int, no_torch: bool,
               as_json: bool) -> None:
    """Build ImageNet-sized JPEGs (500x375) from the photos in PHOTOS and time `levit eval` (random
    LeViT-128S) against timm + torchvision (DataLoader with 0 and 2 workers, batch 32, the better one)."""
    import contextlib
    import tempfile

    from levit_np.perf.eval_bench import Settings, run, summarize

    from .console import err, print_json

    try:
        small, large = (int(n) for n in sizes.split(","))
    except ValueError:
        raise click.BadParameter("expected two sizes, e.g. 500,1000", param_hint="--sizes") from None
    if not 0 < small < large:
        raise click.BadParameter("expected two increasing sizes, e.g. 500,1000", param_hint="--sizes")
    with contextlib.ExitStack() as stack:
        folder = work or stack.enter_context(tempfile.TemporaryDirectory(prefix="levit-bench-eval-"))
        settings = Settings(photos=photos, work=folder, sizes=(small, large), memory_size=memory_size,
                            rounds=rounds, torch=not no_torch)
        with err.status("benchmarking...") as status:
            summary = summarize(run(settings, log=lambda message: status.update(message)))
    if as_json:
        print_json(summary)
        return
    _print_tables(summary, settings)


def _print_tables(summary: dict, settings) -> None:
    from .console import out, show, table as new_table

    table = new_table("photos", "levit eval s", "img/s", "torch workers=0 s", "torch workers=2 s", "best torch img/s",
                      "ours ÷ torch", left=0)
    for n, row in summary["rows"].items():
        torch = row["torch_s"]
        best = torch.get(row["torch_best"]) if row["torch_best"] else None
        table.add_row(str(n), f"{row['ours_s']:.2f}", f"{row['ours_img_s']:.1f}",
                      _seconds(torch.get("workers=0")), _seconds(torch.get("workers=2")),
                      "" if best is None else f"{n / best:.1f}", "" if row["ratio"] is None else f"{row['ratio']:.2f}x")
    show(table, f"levit eval vs a PyTorch script, wall time incl. start-up, median of {summary['rounds']} rounds")
    unit = summary["unit"]
    small, large = settings.sizes
    out.print(f"marginal rate ({small}->{large} photos): {summary['marginal_img_s']:.1f} img/s = "
              f"{100 * summary['marginal_of_bound']:.0f}% of the bound {summary['bound_img_s']:.1f} img/s "
              f"({unit['cores']} cores / ({unit['preprocess_ms']:.2f} ms preprocess + {unit['model_ms']:.2f} ms "
              "model per image, each alone on one core, medians of the rounds))", highlight=False)
    rounds = ", ".join(f"{100 * share:.0f}%" for share in summary["marginal_of_bound_by_round"])
    out.print(f"each round's marginal rate against its own bound: {rounds} (median "
              f"{100 * summary['marginal_of_bound_round_median']:.0f}%)", highlight=False)
    for name, rate in summary["torch_marginal_img_s"].items():
        out.print(f"PyTorch script {name}: marginal rate {rate:.1f} img/s", highlight=False)
    memory = ", ".join(f"{n} photos {mb:.0f} MB" for n, mb in summary["peak_mb"].items())
    growth = summary["memory_growth"]
    out.print(f"peak memory of all levit eval processes: {memory}"
              + ("" if growth is None else f" ({100 * growth:+.1f}% from {small} to {settings.memory_size})"),
              highlight=False)


def _seconds(value) -> str:
    return "" if value is None else f"{value:.2f}"
