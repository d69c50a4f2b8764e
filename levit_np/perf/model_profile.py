"""`levit profile --model`: where the time of a whole forward pass goes, block by block.

The model's trace hook (the forward pass calls `hook(name, output)` after 'stem', every block, 'pool' and 'logits')
is the only instrument: the time of a named block is the clock between its hook call and the previous one.
Each block's figure is the median over many forward passes; MACs come from flops.py, and GFLOP/s counts
2 FLOPs per multiply-add (the usual hardware convention; the paper's "FLOPs" are multiply-adds).
"""

from __future__ import annotations

import time

import numpy as np

from levit_np.analysis.flops import block_macs
from levit_np.analysis.tracing import Step
from levit_np.perf.timing import HookTimer, median_iqr


def stage_of(name: str) -> str:
    """The group a trace name belongs to: 'stem', 'stage s' or 'head' (pool and classifier)."""
    if name.startswith("stages."):
        return f"stage {name.split('.')[1]}"
    return "stem" if name == "stem" else "head"


def kind_of(name: str) -> str:
    if name.endswith(".attn"):
        return "shrink attn" if ".downsample." in name else "attention"
    if name.endswith(".mlp"):
        return "shrink MLP" if ".downsample." in name else "MLP"
    return {"stem": "conv stem", "pool": "mean pool", "logits": "heads"}.get(name, name)


def time_forward(model, x: np.ndarray) -> tuple[dict[str, float], float]:
    """One forward pass: ({trace name: seconds since the previous hook}, whole pass in seconds). With its hook
    the pass runs whole, never in batch shards (`kernels/batch_shards.py`)."""
    timer = HookTimer()
    start = time.perf_counter()
    model(x, hook=timer.start())
    return timer.seconds, time.perf_counter() - start


def timed_trace(model, x: np.ndarray, warmup: bool = True) -> list[Step]:
    """Run `model` on x (B, 3, H, W) and return every named output with the time it took, in order.

    With `warmup`, a first untimed pass fills the bias cache (and compiles a JIT backend) so that the times
    are those of a steady-state call. Copying each output is excluded from the times.
    """
    if warmup:
        model(x)
    timer = HookTimer(keep_values=True)
    model(x, hook=timer.start())
    return [Step(name, timer.values[name], seconds) for name, seconds in timer.seconds.items()]


def profile_model(model, batch: int = 1, repeats: int = 20, warmup: int = 2, seed: int = 0) -> dict:
    """Time every named block of `model` on random input. JSON-ready; times in microseconds."""
    cfg = model.config
    x = np.random.default_rng(seed).normal(size=(batch, cfg.in_chans, cfg.img_size, cfg.img_size)).astype(np.float32)
    for _ in range(warmup):
        model(x)
    runs = [time_forward(model, x) for _ in range(repeats)]
    totals = np.array([total for _, total in runs]) * 1e6
    macs = {name: value * batch for name, value in block_macs(cfg).items()}
    rows = []
    for name in model.block_names():
        median, spread = median_iqr([times[name] * 1e6 for times, _ in runs])
        rows.append({"name": name, "stage": stage_of(name), "kind": kind_of(name), "time_us": median,
                     "spread_us": spread, "macs": macs[name],
                     "gflops": 2 * macs[name] / (median * 1e3) if median > 0 else 0.0})
    # Shares are of the sum of the block medians, so they add up to 1; on a busy machine the median whole pass
    # runs longer than that sum, because a pass long enough to be pre-empted usually is, while most blocks are not.
    total_us = sum(row["time_us"] for row in rows)
    for row in rows:
        row["share"] = row["time_us"] / total_us
    stages: dict[str, dict] = {}
    for row in rows:
        entry = stages.setdefault(row["stage"], {"stage": row["stage"], "time_us": 0.0, "macs": 0})
        entry["time_us"] += row["time_us"]
        entry["macs"] += row["macs"]
    for entry in stages.values():
        entry["share"] = entry["time_us"] / total_us
        entry["gflops"] = 2 * entry["macs"] / (entry["time_us"] * 1e3) if entry["time_us"] > 0 else 0.0
    total_macs = sum(macs.values())
    return {"model": cfg.name, "backend": model.backend, "batch": batch, "repeats": repeats,
            "total_us": total_us, "whole_pass_us": float(np.median(totals)),
            "whole_pass_spread_us": float(np.percentile(totals, 75) - np.percentile(totals, 25)),
            "flops": total_macs, "gflops": 2 * total_macs / (total_us * 1e3),
            "images_per_s": batch / (total_us * 1e-6), "stages": list(stages.values()), "blocks": rows}


def plot_profile(result: dict, path, fmt: str = "png") -> None:
    """Two panels: time per stage (with MACs share beside it), and time per block coloured by stage; `fmt` is
    matplotlib's file format (png, svg, pdf)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = result["stages"]
    names = [s["stage"] for s in stages]
    colours = {name: plt.get_cmap("tab10")(i) for i, name in enumerate(names)}
    blocks = result["blocks"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 4 + 0.22 * len(blocks)),
                                      gridspec_kw={"height_ratios": [1, 0.18 * len(blocks)]})
    positions = np.arange(len(stages))
    total_macs = max(result["flops"], 1)
    top.bar(positions - 0.2, [100 * s["share"] for s in stages], 0.4, color=[colours[n] for n in names],
            label="share of time")
    top.bar(positions + 0.2, [100 * s["macs"] / total_macs for s in stages], 0.4, color="lightgrey",
            edgecolor="grey", label="share of multiply-adds")
    top.set_xticks(positions, names)
    top.set_ylabel("% of the forward pass")
    peak = max([100 * s["share"] for s in stages] + [100 * s["macs"] / total_macs for s in stages])
    top.set_ylim(0, peak * 1.35)  # headroom for the legend
    top.legend(loc="upper center", ncol=2)
    top.set_title(f"{result['model']}, backend {result['backend']}, batch {result['batch']}: "
                  f"{result['total_us'] / 1e3:.2f} ms per pass, {result['gflops']:.1f} GFLOP/s")
    y = np.arange(len(blocks))[::-1]
    bottom.barh(y, [b["time_us"] / 1e3 for b in blocks], color=[colours[b["stage"]] for b in blocks])
    bottom.set_yticks(y, [b["name"] for b in blocks], fontsize=8)
    bottom.set_xlabel("milliseconds (median)")
    for yi, block in zip(y, blocks):
        if block["macs"]:
            bottom.text(block["time_us"] / 1e3, yi, f" {block['gflops']:.0f} GFLOP/s", va="center", fontsize=7)
    bottom.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, format=fmt, dpi=110)
    plt.close(fig)


def latency(models: dict, batch: int = 1, repeats: int = 10, warmup: int = 2, seed: int = 0) -> dict[str, dict]:
    """Whole-pass time of several models, measured interleaved so machine noise hits them alike.

    -> {name: {"median_ms", "spread_ms" (interquartile range), "images_per_s"}}
    """
    first = next(iter(models.values())).config
    x = np.random.default_rng(seed).normal(size=(batch, first.in_chans, first.img_size, first.img_size))
    x = x.astype(np.float32)
    for model in models.values():
        for _ in range(warmup):
            model(x)
    samples: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model(x)
            samples[name].append((time.perf_counter() - start) * 1e3)
    out = {}
    for name, values in samples.items():
        median, spread = median_iqr(values)
        out[name] = {"median_ms": median, "spread_ms": spread, "images_per_s": batch / (median * 1e-3)}
    return out


def ablation_latencies(ablation_id: str, backend: str = "numpy", batch: int = 1, repeats: int = 10) -> list[dict]:
    """Table 5 reports (`ablations.reports`) with each ablation's latency beside the base model's.

    Every architecture runs with random weights, all measured interleaved (`latency`); A4 changes training only,
    so at inference it is the base model.
    """
    from levit_np.analysis.ablations import ABLATIONS, BASE, reports
    from levit_np.levit_model import LevitModel
    from levit_np.model.params import random_params

    rows = reports(ablation_id)
    configs = {"base": BASE, **{r["ablation"]: ABLATIONS[r["ablation"]].config for r in rows
                                if ABLATIONS[r["ablation"]].config is not None}}
    models = {name: LevitModel(cfg, random_params(cfg), backend) for name, cfg in configs.items()}
    latencies = latency(models, batch=batch, repeats=repeats)
    for r in rows:
        r["latency_ms"] = latencies.get(r["ablation"], latencies["base"])
        r["base_latency_ms"] = latencies["base"]
    return rows

