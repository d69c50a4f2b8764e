"""Side-by-side speed of LeViT on this CPU: our backends against PyTorch eager, ONNX Runtime and OpenVINO.

Every backend runs in its own worker process whose thread count is fixed in its environment before NumPy,
Numba, torch or a runtime is imported. The workers build the same model (our random weights; the PyTorch model
is Hugging Face's LeViT holding them, and ONNX Runtime and OpenVINO run `levit export`'s ONNX graph of them, so
those two rows need no PyTorch), report their logits for one probe image, then wait; the parent measures each
backend's distance from ours and from the float64 truth (the NumPy reference in double precision,
`levit_np/perf/truth.py`). The parent asks them in turn, round after round (the order rotating each round), to
time batch-1 calls (latency) and batch-N calls (throughput), so slow drifts of a shared machine hit every
backend alike. Only one worker computes at a time.

    python -m levit_np.perf.bench worker '{"backend": "numba", ...}'   # what the parent starts; speaks JSON lines
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Optional

from levit_np.export.settings import DEFAULT_OPSET
from levit_np.perf.graph_runtimes import onnxruntime_runner, openvino_runner
from levit_np.perf.timing import quantiles, thread_environment, time_calls
from levit_np.perf.worker_channel import WorkerChannel

BACKENDS = ("numba", "numpy", "torch", "onnxruntime", "openvino")
OURS = "numba"
EXPORT_OPSET = DEFAULT_OPSET
MARK = "@@bench "  # prefix of protocol lines on a worker's stdout (libraries may print there too)
PACKAGES = {"torch": ("torch", "transformers"), "export": ("onnx",), "onnxruntime": ("onnx", "onnxruntime"),
            "openvino": ("onnx", "openvino")}


@dataclass
class Settings:
    """What one `levit bench` run measures."""

    variant: str = "levit_128s"
    batch: int = 32  # images per call for the throughput figure
    threads: int = 1
    rounds: int = 5
    seconds: float = 0.5  # timed per backend, per round, for each of latency and throughput
    backends: tuple[str, ...] = BACKENDS
    seed: int = 0


@dataclass
class Result:
    """One backend's samples: seconds per call at batch 1 and at batch N."""

    backend: str
    latency: list[float] = field(default_factory=list)
    batch_times: list[float] = field(default_factory=list)
    error_vs_ours: Optional[float] = None  # max|logits - ours| / max|ours| at batch 1
    error_vs_truth: Optional[float] = None  # max|logits - float64 truth| / max|truth|, same image
    detail: str = ""
    skipped: Optional[str] = None


def missing_packages(backend: str) -> list[str]:
    """Packages `backend` needs that are not installed (found without importing them)."""
    import importlib.util

    return [name for name in PACKAGES.get(backend, ()) if importlib.util.find_spec(name) is None]


def _our_model(spec: dict, backend: str):
    import levit_np

    return levit_np.create(spec["variant"], seed=spec["seed"], backend=backend)


def _torch_model(spec: dict):
    """Hugging Face LevitForImageClassificationWithTeacher (the official architecture) holding our weights."""
    import torch

    from levit_np.model.config import get_config
    from levit_np.model.params import random_params
    from levit_np.analysis.torch_reference import hf_model

    torch.set_num_threads(spec["threads"])
    cfg = get_config(spec["variant"])
    return hf_model(cfg, random_params(cfg, spec["seed"]))


def write_onnx(spec: dict, path: str) -> None:
    """Write our model (the same random weights) as ONNX with levit export: opset 17, dynamic batch, no PyTorch."""
    from levit_np.export.onnx_export import export_onnx, random_source
    from levit_np.export.settings import ExportSettings

    export_onnx(random_source(spec["variant"], spec["seed"]), path, ExportSettings(opset=EXPORT_OPSET))


def make_runner(spec: dict) -> tuple[Callable, str]:
    """A function images (B, 3, 224, 224) float32 -> logits (B, classes), and a one-line description."""
    backend = spec["backend"]
    threads = spec["threads"]
    if backend in ("numba", "numpy"):
        model = _our_model(spec, backend)
        return model, f"levit-np {backend}"
    if backend == "torch":
        import torch

        model = _torch_model(spec)
        torch.set_num_interop_threads(1)

        def run_torch(x):
            with torch.inference_mode():
                return model(pixel_values=torch.from_numpy(x)).logits.numpy()
        return run_torch, f"PyTorch {torch.__version__} eager (transformers LeViT)"
    if backend == "onnxruntime":
        return onnxruntime_runner(spec["onnx"], "pixel_values", "logits", threads)
    if backend == "openvino":
        return openvino_runner(spec["onnx"], "pixel_values", threads)
    raise ValueError(f"unknown backend {backend!r}")


def _reply(message: dict) -> None:
    sys.stdout.write(MARK + json.dumps(message) + "\n")
    sys.stdout.flush()


def worker(spec: dict) -> None:
    """Build the runner, report its batch-1 logits, then serve timing requests read from stdin as JSON lines."""
    import numpy as np

    try:
        run, detail = make_runner(spec)
        from levit_np.perf.truth import probe_images

        probe = probe_images()
        logits = np.asarray(run(probe), dtype=np.float32)
        _reply({"ready": True, "detail": detail, "logits": logits.ravel().tolist()})
    except Exception as e:  # reported to the parent as a skipped backend
        _reply({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return
    images = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        batch = request["batch"]
        if batch not in images:
            images[batch] = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
        _reply({"times": time_calls(run, images[batch], request["seconds"], request["min_calls"])})


# ---------------------------------------------------------------- the parent side


class Worker(WorkerChannel):
    """A backend's worker process (`python -m levit_np.perf.bench worker SPEC`)."""

    def __init__(self, spec: dict, env: dict):
        self.backend = spec["backend"]
        super().__init__("levit_np.perf.bench", ["worker", json.dumps(spec)], env, MARK)

    def times(self, request: dict) -> list[float]:
        """Seconds per call, as the worker measured them for `request`; a worker that stopped is an error."""
        reply = self.measure(request)
        if "times" not in reply:
            raise RuntimeError(f"{self.backend} {reply.get('error', 'worker stopped')}")
        return reply["times"]


def _export(settings: Settings, path: str, env: dict) -> Optional[str]:
    """Export the ONNX model in a child process; None on success, else the reason."""
    spec = json.dumps({"variant": settings.variant, "seed": settings.seed, "threads": settings.threads})
    done = subprocess.run([sys.executable, "-m", "levit_np.perf.bench", "export", spec, path], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return f"ONNX export failed: {lines[-1] if lines else done.returncode}"
    return None


def run_bench(settings: Settings, log: Callable[[str], None] = lambda message: None) -> dict:
    """Measure every requested backend; the result dict is what `levit bench --json` prints."""
    import numpy as np

    from levit_np.model.config import get_config

    cfg = get_config(settings.variant)
    settings.variant = cfg.name
    env = thread_environment(settings.threads)
    results = {name: Result(name) for name in settings.backends}
    with tempfile.TemporaryDirectory(prefix="levit-bench-") as tmp:
        onnx_path = os.path.join(tmp, f"{cfg.name}.onnx")
        export_problem: Optional[str] = None
        if {"onnxruntime", "openvino"} & set(settings.backends) and not missing_packages("export"):
            log(f"exporting {cfg.name} to ONNX (levit export, opset {EXPORT_OPSET})...")
            export_problem = _export(settings, onnx_path, env)
        workers: dict[str, Worker] = {}
        try:
            for name in settings.backends:
                missing = missing_packages(name)
                if missing:
                    results[name].skipped = f"not installed: {', '.join(missing)}"
                    continue
                if name in ("onnxruntime", "openvino") and export_problem:
                    results[name].skipped = export_problem
                    continue
                log(f"starting {name} ({settings.threads} thread(s))...")
                spec = {"backend": name, "variant": cfg.name, "seed": settings.seed, "threads": settings.threads,
                        "onnx": onnx_path}
                workers[name] = Worker(spec, env)
            logits = {}
            for name, w in list(workers.items()):
                reply = w.receive()
                if not reply.get("ready"):
                    results[name].skipped = reply.get("error", "failed to start")
                    w.close()
                    del workers[name]
                    continue
                results[name].detail = reply["detail"]
                logits[name] = np.asarray(reply["logits"], dtype=np.float64)
            if logits:
                reference = logits.get(OURS, next(iter(logits.values())))
                for name, values in logits.items():
                    results[name].error_vs_ours = float(np.abs(values - reference).max() / np.abs(reference).max())
                log("computing the float64 truth...")
                _measure_truth(settings, results, logits)
            order = list(workers)
            for round_index in range(settings.rounds):
                log(f"round {round_index + 1}/{settings.rounds}")
                shift = round_index % max(1, len(order))
                for name in order[shift:] + order[:shift]:
                    w = workers[name]
                    results[name].latency += w.times({"batch": 1, "seconds": settings.seconds, "min_calls": 3})
                    results[name].batch_times += w.times({"batch": settings.batch, "seconds": settings.seconds,
                                                          "min_calls": 2})
        finally:
            for w in workers.values():
                w.close()
    return summarise(settings, cfg, results)


def _measure_truth(settings: Settings, results: dict[str, Result], logits: dict) -> None:
    """Each backend's distance from the float64 reference on the probe image every worker reported."""
    from levit_np.perf.truth import distance, probe_images, truth_logits

    truth = truth_logits(settings.variant, settings.seed, probe_images())
    for name, values in logits.items():
        results[name].error_vs_truth = distance(values, truth)


def sgemm_rate(threads: int) -> float:
    """NumPy's sgemm GFLOP/s on 1024^3 with `threads` BLAS threads, in a child process (the limit to compare with)."""
    code = ("import time, numpy as np\n"
            "a = np.ones((1024, 1024), np.float32); b = a.copy(); a @ b\n"
            "best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(20))\n"
            "print(2 * 1024 ** 3 / best / 1e9)\n")
    done = subprocess.run([sys.executable, "-c", code], env=thread_environment(threads), capture_output=True,
                          text=True)
    return float(done.stdout.strip()) if done.returncode == 0 else float("nan")


def summarise(settings: Settings, cfg, results: dict[str, Result]) -> dict:
    """Medians, interquartile ranges, images/s, GFLOP/s and the ratios against ours (numba)."""
    from levit_np.perf.block_table import cpu_name
    from levit_np.analysis.flops import total_flops

    macs = total_flops(cfg)
    rows = {}
    for name, r in results.items():
        if r.skipped or not r.latency:
            rows[name] = {"skipped": r.skipped or "no samples"}
            continue
        lat = quantiles(r.latency)
        thr = quantiles(r.batch_times)
        rows[name] = {
            "detail": r.detail,
            "latency_ms": {"median": lat[1] * 1e3, "p25": lat[0] * 1e3, "p75": lat[2] * 1e3,
                           "min": min(r.latency) * 1e3, "samples": len(r.latency)},
            "throughput_img_s": {"median": settings.batch / thr[1], "p25": settings.batch / thr[2],
                                 "p75": settings.batch / thr[0], "samples": len(r.batch_times)},
            "gflops_latency": 2 * macs / lat[1] / 1e9,
            "gflops_throughput": 2 * macs * settings.batch / thr[1] / 1e9,
            "max_rel_diff_vs_ours": r.error_vs_ours,
            "max_rel_diff_vs_float64": r.error_vs_truth,
        }
    ours = rows.get(OURS, {})
    for name, row in rows.items():
        if "latency_ms" in row and "latency_ms" in ours:
            row["ours_latency_ratio"] = ours["latency_ms"]["median"] / row["latency_ms"]["median"]
            row["ours_throughput_ratio"] = (ours["throughput_img_s"]["median"] /
                                            row["throughput_img_s"]["median"])
    return {"variant": cfg.name, "macs_per_image": macs, "threads": settings.threads, "batch": settings.batch,
            "rounds": settings.rounds, "seconds_per_measurement": settings.seconds,
            "sgemm_gflops": sgemm_rate(settings.threads), "cpu": cpu_name(), "backends": rows}


def main(argv: list[str]) -> None:
    if argv[:1] == ["worker"]:
        worker(json.loads(argv[1]))
    elif argv[:1] == ["export"]:
        write_onnx(json.loads(argv[1]), argv[2])
    else:
        raise SystemExit("usage: python -m levit_np.perf.bench worker SPEC | export SPEC PATH")


if __name__ == "__main__":
    main(sys.argv[1:])
