"""End-to-end `levit eval` against a plain PyTorch evaluation script, wall time including start-up.

The dataset: N JPEGs of ImageNet size (500x375 or 375x500, quality 90) cut from a folder of photos (random
crops, flips), in 10 class folders named by ImageNet wnids, so both sides read a torchvision ImageFolder.
The PyTorch script is what a user would write: timm's levit_128s (random weights: speed does not depend on
them), torchvision's official transform (Resize(256, bicubic), CenterCrop(224), ToTensor, Normalize),
ImageFolder, DataLoader(batch_size=32, num_workers=0 or 2), top-1/top-5 counted in the loop; the better of the
two worker counts is the comparison. Each run is one subprocess timed from start to exit, rounds interleaved
so a busy machine slows every contender alike; peak memory is the largest sum of the resident sizes of the
run's process tree (sampled every 100 ms).

The bound: cores / (preprocess ms + model ms per image), each measured alone on one core (one thread), once in
every round beside the runs (a machine whose speed drifts moves the bound with them); the medians count, and
each round's own marginal rate against its own bound is reported too (paired in time, the drift cancels).

    python -m levit_np.perf.eval_bench torch DATA WORKERS    # the PyTorch script (what the parent runs)
    python -m levit_np.perf.eval_bench unit DATA VARIANT     # preprocess and model ms per image, one core
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from levit_np.perf import timing
from levit_np.perf.timing import thread_variables

CLASS_WNIDS = ("n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331", "n01498041",
               "n01514668", "n01514859", "n01518878")
PHOTO_SIZE = (500, 375)
SAMPLE_SECONDS = 0.1  # memory sampling: every 20 ms cost the measuring process 14% of a core, beside the runs
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
TORCH_LOADER_WORKERS = (0, 2)


@dataclass
class Settings:
    photos: str  # a folder of source photos
    work: str  # where the datasets and weights go
    sizes: tuple[int, int] = (500, 1000)  # the marginal rate is taken between these two
    memory_size: int = 5000  # peak memory is compared between sizes[0] and this (0: skip)
    rounds: int = 3
    variant: str = "levit_128s"
    torch: bool = True


@dataclass
class Run:
    seconds: float
    peak_mb: float
    top1: Optional[float] = None


@dataclass
class Report:
    settings: Settings
    ours: dict[int, list[Run]] = field(default_factory=dict)
    torch: dict[str, dict[int, list[Run]]] = field(default_factory=dict)  # "workers=0" -> size -> runs
    units: list[dict] = field(default_factory=list)  # one per round: preprocess_ms, model_ms, cores


def clean_environment() -> dict[str, str]:
    """The environment a user would run with: no thread pins (each side picks its own defaults)."""
    return {name: value for name, value in os.environ.items() if name not in timing.THREAD_VARIABLES}


def make_dataset(photos: str, root: Path, count: int, seed: int = 0) -> Path:
    """`count` 500x375 JPEGs cut from the photos in `photos`, spread over 10 wnid folders (kept if present)."""
    import numpy as np
    from PIL import Image

    sources = sorted(p for p in Path(photos).rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if not sources:
        raise FileNotFoundError(f"{photos}: no photos (.jpg, .png, .bmp) to build the benchmark dataset from")
    marker = root / f".complete-{count}"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    images = [Image.open(p).convert("RGB") for p in sources]
    for i in range(count):
        image = images[i % len(images)]
        w, h = image.size
        scale = rng.uniform(0.5, 1.0)
        cw, ch = max(64, int(w * scale)), max(64, int(h * scale))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        size = PHOTO_SIZE if cw >= ch else PHOTO_SIZE[::-1]
        photo = image.crop((x, y, x + cw, y + ch)).resize(size, Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        folder = root / CLASS_WNIDS[i % len(CLASS_WNIDS)]
        folder.mkdir(parents=True, exist_ok=True)
        photo.save(folder / f"photo_{i:06d}.JPEG", quality=90)
    marker.touch()
    return root


def subset(full: Path, root: Path, count: int) -> Path:
    """The first `count` images of `full` (by number) as their own ImageFolder, hard-linked."""
    if (root / f".complete-{count}").exists():
        return root
    for folder in sorted(p for p in full.iterdir() if p.is_dir()):
        (root / folder.name).mkdir(parents=True, exist_ok=True)
        for image in folder.iterdir():
            if int(image.stem.split("_")[1]) < count and not (root / folder.name / image.name).exists():
                os.link(image, root / folder.name / image.name)
    (root / f".complete-{count}").touch()
    return root


def timed(command: list[str], env: dict[str, str]) -> tuple[Run, str]:
    """Run `command`; wall seconds from start to exit and the peak summed RSS of its process tree (MB)."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    root = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            tree = [root] + root.children(recursive=True)
            peak = max(peak, sum(_rss(p) for p in tree))
        except psutil.NoSuchProcess:
            pass
        time.sleep(SAMPLE_SECONDS)
    out, err = process.communicate()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({process.returncode}): {err.strip()[-400:]}")
    return Run(seconds, peak / 2**20), out


def _rss(process) -> int:
    try:
        return process.memory_info().rss
    except Exception:  # the process ended between listing and reading
        return 0


def run(settings: Settings, log: Callable[[str], None] = lambda message: None) -> Report:
    from levit_np.model.config import get_config
    from levit_np.model.params import random_params
    from levit_np.weights.hdf5_file import write_weights

    work = Path(settings.work)
    work.mkdir(parents=True, exist_ok=True)
    largest = max(settings.sizes + (settings.memory_size,))
    log(f"building {largest} photos")
    full = make_dataset(settings.photos, work / f"photos-{largest}", largest)
    roots = {n: subset(full, work / f"photos-{n}", n) if n != largest else full
             for n in settings.sizes + ((settings.memory_size,) if settings.memory_size else ())}
    weights = work / f"{settings.variant}-random.h5"
    if not weights.exists():
        cfg = get_config(settings.variant)
        write_weights(weights, cfg, random_params(cfg, 0))
    env = clean_environment()
    report = Report(settings)
    ours = levit_command()
    for round_index in range(settings.rounds):
        log(f"round {round_index + 1}/{settings.rounds}: preprocess and model time on one core")
        report.units.append(unit_times(str(roots[settings.sizes[0]]), settings.variant))
        for n, root in roots.items():
            log(f"round {round_index + 1}/{settings.rounds}: levit eval, {n} photos")
            result, out = timed(ours + ["eval", str(root), "--weights", str(weights), "--json"], env)
            result.top1 = json.loads(out)["top1"]
            report.ours.setdefault(n, []).append(result)
            if not settings.torch or n not in settings.sizes:
                continue
            for workers in TORCH_LOADER_WORKERS:
                log(f"round {round_index + 1}/{settings.rounds}: PyTorch script, workers={workers}, {n} photos")
                result, out = timed([sys.executable, "-m", "levit_np.perf.eval_bench", "torch", str(root),
                                     str(workers)], env)
                result.top1 = json.loads(out)["top1"]
                report.torch.setdefault(f"workers={workers}", {}).setdefault(n, []).append(result)
    return report


def unit_times(root: str, variant: str) -> dict:
    """Preprocess and model ms per image, each alone on one core, in a subprocess pinned to one thread."""
    env = clean_environment()
    env.update(thread_variables(1))
    out = subprocess.run([sys.executable, "-m", "levit_np.perf.eval_bench", "unit", root, variant], env=env,
                         check=True, capture_output=True, text=True).stdout
    return {**json.loads(out.strip().splitlines()[-1]), "cores": len(os.sched_getaffinity(0))}


def levit_command() -> list[str]:
    """The `levit` console script of this environment, as a user runs it."""
    script = Path(sys.executable).with_name("levit")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from levit_cli.main import main; main()"]


def _bound(unit: dict) -> float:
    """Images/s if every core only preprocessed and ran the model: cores / (preprocess + model ms per image)."""
    return unit["cores"] * 1000.0 / (unit["preprocess_ms"] + unit["model_ms"])


def summarize(report: Report) -> dict:
    """Medians, the ratio against the better PyTorch run, the marginal rate against the bound, memory."""
    import statistics

    small, large = report.settings.sizes
    median = lambda runs: statistics.median(r.seconds for r in runs)  # noqa: E731
    rows = {}
    for n in report.settings.sizes:
        ours = median(report.ours[n])
        torch = {name: median(sizes[n]) for name, sizes in report.torch.items() if n in sizes}
        best = min(torch, key=torch.get) if torch else None
        rows[n] = {"ours_s": ours, "ours_img_s": n / ours, "torch_s": torch, "torch_best": best,
                   "ratio": (torch[best] / ours) if best else None}
    unit = {name: statistics.median(u[name] for u in report.units) for name in report.units[0]}
    bound = _bound(unit)
    marginal = (large - small) / (rows[large]["ours_s"] - rows[small]["ours_s"])
    per_round = [(large - small) / (big.seconds - little.seconds) / _bound(u)
                 for little, big, u in zip(report.ours[small], report.ours[large], report.units)]
    memory = {n: statistics.median(r.peak_mb for r in runs) for n, runs in report.ours.items()}
    mem_small, mem_large = memory[small], memory.get(report.settings.memory_size)
    return {"rows": rows, "unit": unit, "bound_img_s": bound, "marginal_img_s": marginal,
            "marginal_of_bound": marginal / bound, "marginal_of_bound_by_round": per_round,
            "marginal_of_bound_round_median": statistics.median(per_round), "peak_mb": memory,
            "memory_growth": (mem_large / mem_small - 1) if mem_large else None, "rounds": report.settings.rounds,
            "torch_marginal_img_s": {name: (large - small) / (statistics.median(r.seconds for r in sizes[large])
                                                               - statistics.median(r.seconds for r in sizes[small]))
                                     for name, sizes in report.torch.items()}}


# ---------------------------------------------------------------- the subprocesses


def torch_script(root: str, workers: int) -> dict:
    """The plain PyTorch evaluation a user would write (timm model, torchvision transform and loader)."""
    import warnings

    warnings.filterwarnings("ignore", message="Failed to load image Python extension")
    import timm
    import torch
    from torchvision import datasets, transforms

    model = timm.create_model("levit_128s", pretrained=False).eval()
    transform = transforms.Compose([
        transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(root, transform=transform), batch_size=32,
                                         num_workers=workers, shuffle=False)
    top1 = top5 = total = 0
    with torch.inference_mode():
        for images, labels in loader:
            best = model(images).topk(5, dim=1).indices
            top1 += (best[:, 0] == labels).sum().item()
            top5 += (best == labels[:, None]).any(dim=1).sum().item()
            total += len(labels)
    return {"top1": 100.0 * top1 / total, "top5": 100.0 * top5 / total, "images": total}


def unit_script(root: str, variant: str, batch: int = 32, repeats: int = 5) -> dict:
    """Median preprocess ms per image (over `batch` images) and model ms per image at batch `batch`."""
    import statistics

    import numpy as np

    import levit_np
    from levit_np.images.preprocessing import preprocess

    paths = sorted(str(p) for p in Path(root).rglob("*.JPEG"))[:batch]
    model = levit_np.create(variant, seed=0, backend="numba")
    x = np.stack([preprocess(p) for p in paths])
    model(x)
    prep, compute = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for p in paths:
            preprocess(p)
        prep.append((time.perf_counter() - start) * 1000 / len(paths))
        start = time.perf_counter()
        model(x)
        compute.append((time.perf_counter() - start) * 1000 / len(paths))
    return {"preprocess_ms": statistics.median(prep), "model_ms": statistics.median(compute)}


if __name__ == "__main__":
    if sys.argv[1] == "torch":
        print(json.dumps(torch_script(sys.argv[2], int(sys.argv[3]))))
    elif sys.argv[1] == "unit":
        print(json.dumps(unit_script(sys.argv[2], sys.argv[3])))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
