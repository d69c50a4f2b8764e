"""`levit flops`: parameters and multiply-adds per stage and block, the official counter's totals, Table 5."""

from __future__ import annotations

from typing import Optional

import click

from .options import model_name_option

ABLATION_HELP = "A Table 5 ablation of LeViT-128S: A1 ... A7, or 'all'."


def mega(n: float, digits: int = 2) -> str:
    return f"{n / 1e6:,.{digits}f}"


@click.command()
@model_name_option("--model", "model", default=None, help="Per stage and block of this variant.")
@click.option("--ablation", default=None, metavar="ID", help=ABLATION_HELP)
@click.option("--layers", is_flag=True, help="With --model: one row per conv, linear and attention product.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def flops(model: Optional[str], ablation: Optional[str], layers: bool, as_json: bool) -> None:
    """Parameters and FLOPs (multiply-adds, as the paper counts them) per stage and block.

    Without options: the five variants against the official counter. --model NAME: per stage and per block.
    --ablation ID: a Table 5 ablation beside the paper's figures and the base model.
    """
    if model is not None and ablation is not None:
        raise click.UsageError("give either --model or --ablation, not both")
    if layers and model is None:
        raise click.UsageError("--layers goes with --model")
    if ablation is not None:
        from levit_np.analysis.ablations import reports as ablation_reports

        from .console import print_json, show

        reports = ablation_reports(ablation)
        if as_json:
            print_json(reports[0] if len(reports) == 1 else reports)
        else:
            show(ablation_table(reports), ABLATION_TITLE)
            print_notes(reports)
        return
    if model is None:
        return variants_summary(as_json)
    model_summary(model, layers, as_json)


ABLATION_TITLE = "LeViT-128S ablations (paper Table 5): ours beside the paper's"


def ablation_table(reports: list[dict], latencies: Optional[dict] = None):
    """Rich table: base model then each ablation, ours beside the paper's; latency columns when measured."""
    from .console import table as new_table

    table = new_table("id", "without", "params 1h/2h", "paper", "MFLOPs", "paper", "top-1",
                      *(("ms",) if latencies else ()), left=2)
    base, paper_base = reports[0]["base"], reports[0]["paper_base"]
    cells = ["-", "(base LeViT-128S)", f"{base['params_one_head'] / 1e6:.2f}/{base['params'] / 1e6:.2f}",
             f"{paper_base['params_m']}M", mega(base["flops"], 1), f"{paper_base['flops_m']}M", f"{paper_base['top1']}"]
    if latencies:
        cells.append(latency_cell(latencies.get("base")))
    table.add_row(*cells)
    for r in reports:
        title = r["title"].removeprefix("without ") + ("" if r["architecture"] else " (training)")
        cells = [r["ablation"], title, f"{r['params_one_head'] / 1e6:.2f}/{r['params'] / 1e6:.2f}",
                 f"{r['paper_params_m']}M", mega(r["flops"], 1),
                 f"{r['paper_flops_m']:g}M", f"{r['paper_top1']}"]
        if latencies:
            cells.append(latency_cell(r.get("latency_ms")))
        table.add_row(*cells)
    table.caption = ("params in millions without head_dist (as the paper counts) / with both heads; MFLOPs = "
                     "millions of multiply-adds, both heads (the official counter); top-1: the paper's, 100 epochs"
                     + ("; ms: measured latency per pass" if latencies else ""))
    return table


def latency_cell(entry: Optional[dict]) -> str:
    return "-" if entry is None else f"{entry['median_ms']:.1f}±{entry['spread_ms'] / 2:.1f}"


def print_notes(reports: list[dict]) -> None:
    from .console import line

    for r in reports:
        for note in r["notes"]:
            line(f"{r['ablation']} {note}")


def variants_summary(as_json: bool) -> None:
    from levit_np.analysis.flops import summary
    from levit_np.model.config import VARIANTS

    from .console import print_json, show, table

    rows = [summary(cfg) for cfg in VARIANTS.values()]
    if as_json:
        print_json([{key: r[key] for key in ("model", "params", "flops", "official_params", "official_flops")}
                    for r in rows])
        return
    counts = table("model", "params", "official", "FLOPs (MACs)", "official", "match")
    for r in rows:
        match = r["params"] == r["official_params"] and r["flops"] == r["official_flops"]
        counts.add_row(r["model"], f"{r['params']:,}", f"{r['official_params']:,}", f"{r['flops']:,}",
                       f"{r['official_flops']:,}", "[green]exact[/]" if match else "[red]differs[/]")
    show(counts, "Parameters and FLOPs against the official counter")


def model_summary(model: str, layers: bool, as_json: bool) -> None:
    from levit_np.analysis.flops import summary
    from levit_np.model.config import get_config

    from .console import line, print_json, show, table as new_table

    s = summary(get_config(model))
    if as_json:
        if not layers:
            s.pop("layers")
        print_json(s)
        return
    table = new_table("stage", "layer" if layers else "block", "params", "MMACs", "% of FLOPs", left=2)
    rows = s["layers"] if layers else [{"name": name, **v} for name, v in s["blocks"].items()]
    stage_of = {c["block"]: c["stage"] for c in s["layers"]}
    current = None
    for row in rows:
        stage = row.get("stage") or stage_of[row["name"]]
        if stage != current:
            current = stage
            totals = s["stages"][stage]
            table.add_row(f"[bold]{stage}[/]", "", f"[bold]{totals['params']:,}[/]", f"[bold]{mega(totals['macs'])}[/]",
                          f"[bold]{100 * totals['macs'] / s['flops']:.1f}[/]")
        table.add_row("", row["name"], f"{row['params']:,}", mega(row["macs"]), f"{100 * row['macs'] / s['flops']:.1f}")
    if s["official_flops"] is not None:
        same = s["flops"] == s["official_flops"] and s["params"] == s["official_params"]
        table.caption = (f"official counter: {s['official_flops']:,} FLOPs, {s['official_params']:,} params: "
                         + ("equal" if same else "DIFFERENT"))
    show(table, f"{s['model']}: {s['params']:,} parameters, {s['flops']:,} FLOPs (multiply-adds)")
    parts = ", ".join(f"{part} {mega(v['macs'], 1)}M" for part, v in s["parts"].items())
    line(f"by part: {parts}")
