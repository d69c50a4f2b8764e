"""`levit tradeoff`: the paper's Table 3 models timed on this CPU in every runtime, and its headline restated.

Every (model, runtime) pair runs in its own worker process (levit_np.perf.tradeoff_worker) whose thread pools
are fixed in its environment before anything is imported. The timm model of each model is built once by a
`prepare` process that writes its ONNX export, its logits of a probe batch and (LeViT) its weights; each worker
checks its logits against those before it is timed. Runtime by runtime, all that runtime's workers are started
and then wait while the parent asks them in turn, round after round with the order rotating, for a few calls
each: the models a ratio compares (LeViT-192 against EfficientNet-B2 in one runtime) are timed interleaved, so
slow drifts of a shared machine hit them alike, and only one worker computes at a time. (One runtime at a time,
not all at once: some forty live workers would hold over 10 GB.) The budget is split evenly over pairs and
rounds, so fast pairs make many calls and slow ones (EfficientNet-B4 in eager PyTorch) at least one per round.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Optional

from levit_np.perf.timing import quantiles, thread_environment
from levit_np.perf.worker_channel import WorkerChannel
from levit_np.perf.published import CLAIM_PAIRS, CLAIMED_SPEEDUP, SOURCE, TABLE3, PublishedModel, counted
from levit_np.perf.tradeoff_worker import EXPORT_REQUIRES, MARK, REQUIRES, RUNTIMES

WORKER = "levit_np.perf.tradeoff_worker"
ONNX_RUNTIMES = ("onnxruntime", "openvino")


@dataclass
class Settings:
    """What one `levit tradeoff` run measures (defaults: the paper's CPU setting)."""

    models: tuple[PublishedModel, ...] = TABLE3
    runtimes: tuple[str, ...] = RUNTIMES
    batch: int = 16
    threads: int = 1
    budget: float = 120.0  # seconds of timed calls in all, split evenly over pairs and rounds
    rounds: int = 5
    seed: int = 0


@dataclass
class Pair:
    """One model in one runtime: its worker's report and its samples (seconds per call of `batch` images)."""

    model: PublishedModel
    runtime: str
    times: list[float] = field(default_factory=list)
    detail: str = ""
    resolution: Optional[int] = None
    max_rel_diff_vs_eager: Optional[float] = None
    first_call_s: float = 0.0
    skipped: Optional[str] = None


def missing(names: tuple[str, ...]) -> list[str]:
    """Packages among `names` that are not installed (found without importing them)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def calls_per_turn(first_call_s: float, share_s: float) -> int:
    """Calls that fill one turn's share of the budget, at least one."""
    return max(1, int(share_s / max(first_call_s, 1e-6)))


def start_worker(command: str, spec: dict, env: dict) -> WorkerChannel:
    """A (model, runtime) worker process: `python -m levit_np.perf.tradeoff_worker COMMAND SPEC`."""
    return WorkerChannel(WORKER, [command, json.dumps(spec)], env, MARK)


def plan(settings: Settings) -> list[Pair]:
    """Every pair asked for, those that cannot run marked skipped with the reason (nothing started yet)."""
    pairs = []
    export_missing = missing(EXPORT_REQUIRES)
    for model in settings.models:
        for runtime in settings.runtimes:
            if runtime == "numba" and model.family != "LeViT":
                continue
            pair = Pair(model, runtime)
            need = missing(REQUIRES[runtime])
            if runtime in ONNX_RUNTIMES:
                need = export_missing + need
            if need:
                pair.skipped = f"not installed: {', '.join(dict.fromkeys(need))}"
            pairs.append(pair)
    return pairs


def _spec(settings: Settings, model: PublishedModel, folder: str, **extra) -> dict:
    return {"key": model.key, "timm_name": model.timm_name, "family": model.family, "seed": settings.seed,
            "threads": settings.threads, "batch": settings.batch, "folder": folder, **extra}


def _prepare(settings: Settings, pairs: list[Pair], folder: str, env: dict, step: Callable[[str], None]) -> None:
    """One `prepare` process per model that any pair needs it for; a failure marks that model's pairs skipped."""
    if missing(REQUIRES["torch"]):
        return  # without torch and timm no pair needs it but numba, which then uses its own weights
    for model in settings.models:
        live = [p for p in pairs if p.model is model and not p.skipped]
        wants_onnx = any(p.runtime in ONNX_RUNTIMES for p in live)
        if not (wants_onnx or any(p.runtime == "numba" for p in live)):
            continue
        step(f"preparing {model.name}" + (" (ONNX export)" if wants_onnx else ""))
        done = subprocess.run([sys.executable, "-m", WORKER, "prepare",
                               json.dumps(_spec(settings, model, folder, onnx=wants_onnx))],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            reason = f"preparing failed: {lines[-1] if lines else done.returncode}"
            for p in live:
                if p.runtime != "torch":
                    p.skipped = reason
            continue
        reply = json.loads(next(line for line in done.stdout.splitlines() if line.startswith(MARK))[len(MARK):])
        for p in live:
            p.resolution = reply["resolution"]


def _start(settings: Settings, pairs: list[Pair], live: list[int], folder: str, env: dict,
           step: Callable[[str], None]) -> dict[int, WorkerChannel]:
    """Start the workers of pairs[i] for i in `live`, two at a time (each builds, checks and warms its runner);
    keep those that came up."""
    workers: dict[int, WorkerChannel] = {}
    for start in range(0, len(live), 2):
        batch = live[start:start + 2]
        for i in batch:
            p = pairs[i]
            spec = _spec(settings, p.model, folder, runtime=p.runtime, resolution=p.resolution or 224)
            workers[i] = start_worker("serve", spec, env)
        for i in batch:
            p = pairs[i]
            step(f"starting {p.model.name} in {p.runtime}")
            reply = workers[i].receive()
            if not reply.get("ready"):
                p.skipped = reply.get("error", "failed to start")
                workers.pop(i).close()
                continue
            p.detail, p.resolution = reply["detail"], reply["resolution"]
            p.max_rel_diff_vs_eager, p.first_call_s = reply["max_rel_diff_vs_eager"], reply["call_s"]
    return workers


def _counting_steps(progress: Callable[[str, int, int], None], total: int) -> Callable[[str], None]:
    """A `step(text)` that calls `progress(text, steps done so far, total)` and counts one more step."""
    done = 0

    def step(text: str) -> None:
        nonlocal done
        progress(text, done, total)
        done += 1
    return step


def run_tradeoff(settings: Settings, progress: Callable[[str, int, int], None] = lambda text, done, total: None,
                 ) -> dict:
    """Measure every pair; `progress(text, done, total)` is called at each step. -> what `--json` prints."""
    pairs = plan(settings)
    live = [p for p in pairs if not p.skipped]
    n_models = len({p.model.key for p in live})
    total = n_models + len(live) + settings.rounds * len(live)
    step = _counting_steps(progress, total)

    env = thread_environment(settings.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="levit-tradeoff-") as folder:
        _prepare(settings, pairs, folder, env, step)
        share = settings.budget / max(1, settings.rounds * len(live))
        for runtime in settings.runtimes:
            group = [i for i, p in enumerate(pairs) if p.runtime == runtime and not p.skipped]
            workers = _start(settings, pairs, group, folder, env, step)
            try:
                _rounds(settings, pairs, workers, share, step)
            finally:
                for w in workers.values():
                    w.close()
    progress("done", total, total)
    return summarise(settings, pairs, load_before, os.getloadavg())


def _rounds(settings: Settings, pairs: list[Pair], workers: dict[int, WorkerChannel], share: float,
            step: Callable[[str], None]) -> None:
    """Ask each worker in turn for `share` seconds of calls, round after round, the order rotating each round."""
    order = list(workers)
    for round_index in range(settings.rounds):
        shift = round_index % max(1, len(order))
        for i in order[shift:] + order[:shift]:
            p = pairs[i]
            step(f"{p.runtime}, round {round_index + 1}/{settings.rounds}: {p.model.name}")
            if p.skipped:
                continue
            reply = workers[i].measure({"calls": calls_per_turn(p.first_call_s, share)})
            if "times" not in reply:
                p.skipped = reply.get("error", "worker stopped")
                continue
            p.times += reply["times"]


def operator_profile(settings: Settings, calls: int = 3,
                     progress: Callable[[str, int, int], None] = lambda text, done, total: None) -> dict:
    """Seconds per call by kind of operator for every pair (numba has no such profile and is left out), each in
    its own process, one after another. -> {"models": [{"name", "runtimes": {runtime: {kind: seconds}}}], ...}"""
    settings.runtimes = tuple(r for r in settings.runtimes if r != "numba")
    pairs = plan(settings)
    live = [p for p in pairs if not p.skipped]
    total = len({p.model.key for p in live}) + len(live)
    step = _counting_steps(progress, total)

    env = thread_environment(settings.threads)
    times: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="levit-tradeoff-") as folder:
        _prepare(settings, pairs, folder, env, step)
        for i, p in enumerate(pairs):
            if p.skipped:
                continue
            step(f"profiling {p.model.name} in {p.runtime}")
            spec = _spec(settings, p.model, folder, runtime=p.runtime, resolution=p.resolution or 224, calls=calls)
            worker = start_worker("ops", spec, env)
            reply = worker.receive()
            worker.close()
            times[i] = reply.get("ops") or {"skipped": reply.get("error", "failed")}
            p.resolution = reply.get("resolution", p.resolution)
    progress("done", total, total)
    models = []
    for model in settings.models:
        mine = [(i, p) for i, p in enumerate(pairs) if p.model is model]
        models.append({"key": model.key, "name": model.name,
                       "resolution": next((p.resolution for _, p in mine if p.resolution), None),
                       "runtimes": {p.runtime: times.get(i, {"skipped": p.skipped}) for i, p in mine}})
    from levit_np.perf.block_table import cpu_name  # (block_table imports NumPy)

    return {"cpu": cpu_name(), "threads": settings.threads, "batch": settings.batch, "calls": calls,
            "models": models}


def summarise(settings: Settings, pairs: list[Pair], load_before, load_after) -> dict:
    """Images/s (median and interquartile range) per model and runtime, beside Table 3, and the claim restated."""
    models = []
    for model in settings.models:
        params, macs = counted(model)
        row = {"key": model.key, "name": model.name, "family": model.family, "timm_name": model.timm_name,
               "params": params, "flops": macs, "flops_source": "levit flops" if model.family == "LeViT" else "Table 3",
               "top1": model.top1, "paper_intel_img_s": model.intel_img_s, "resolution": None, "runtimes": {}}
        for p in pairs:
            if p.model is not model:
                continue
            row["resolution"] = row["resolution"] or p.resolution
            if p.skipped or not p.times:
                row["runtimes"][p.runtime] = {"skipped": p.skipped or "no samples"}
                continue
            p25, median, p75 = quantiles(p.times)
            row["runtimes"][p.runtime] = {
                "img_s": settings.batch / median, "img_s_p25": settings.batch / p75,
                "img_s_p75": settings.batch / p25, "ms_per_call": median * 1e3, "samples": len(p.times),
                "max_rel_diff_vs_eager": p.max_rel_diff_vs_eager, "detail": p.detail}
        measured = {r: v["img_s"] for r, v in row["runtimes"].items() if "img_s" in v}
        if measured:
            best = max(measured, key=measured.get)
            row["best"] = {"runtime": best, "img_s": measured[best]}
        models.append(row)
    from levit_np.perf.block_table import cpu_name  # (block_table imports NumPy)

    return {"cpu": cpu_name(), "threads": settings.threads, "batch": settings.batch, "budget_s": settings.budget,
            "rounds": settings.rounds, "load_average_before": list(load_before), "load_average_after": list(load_after),
            "source": SOURCE, "runtimes": list(settings.runtimes), "models": models, "claims": claims(models)}


def claims(models: list[dict]) -> list[dict]:
    """For each (LeViT, EfficientNet) pair at about equal top-1: LeViT's images/s over EfficientNet's, per runtime
    (and each in its fastest runtime, "best"), beside the paper's ratio."""
    rows = {m["key"]: m for m in models}
    out = []
    for levit_key, effnet_key in CLAIM_PAIRS:
        if levit_key not in rows or effnet_key not in rows:
            continue
        levit, effnet = rows[levit_key], rows[effnet_key]
        ratios = {}
        for runtime, value in levit["runtimes"].items():
            other = effnet["runtimes"].get(runtime, {})
            if "img_s" in value and "img_s" in other:
                ratios[runtime] = value["img_s"] / other["img_s"]
        if "best" in levit and "best" in effnet:
            ratios["best"] = levit["best"]["img_s"] / effnet["best"]["img_s"]
        out.append({"levit": levit["name"], "levit_top1": levit["top1"], "efficientnet": effnet["name"],
                    "efficientnet_top1": effnet["top1"],
                    "paper_ratio": levit["paper_intel_img_s"] / effnet["paper_intel_img_s"],
                    "paper_claim": CLAIMED_SPEEDUP, "ratios": ratios})
    return out
