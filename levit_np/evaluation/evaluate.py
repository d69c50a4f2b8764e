"""One evaluation run: what is left to do (resume), which runner does it (worker processes here, or a Dask
cluster), the records streamed into the predictions log as they finish, and the summary at the end.

    dataset = open_dataset("val/")
    outcome = evaluate(dataset, ModelSpec(weights="levit_128s.h5"), Settings(batch_size=32))
    outcome.summary["top1"], outcome.summary["top5"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from levit_np.errors import LevitError
from levit_np.evaluation.datasets import Dataset
from levit_np.evaluation.engine import ModelSpec, Preprocessing, evaluate_batch, model_facts
from levit_np.evaluation.metrics import Accuracy, score
from levit_np.evaluation.pipeline import plan_batches, run_batches
from levit_np.evaluation.results import PredictionLog

DEFAULT_BATCH_SIZE = 32
DEFAULT_SHARD_BATCHES = 4  # batches per Dask task: large enough to hide scheduling, small enough to rebalance


@dataclass(frozen=True)
class Settings:
    batch_size: int = DEFAULT_BATCH_SIZE
    preprocessing: Preprocessing = Preprocessing()
    workers: Optional[int] = None  # worker processes on this machine (0: in this process); None: one per core
    threads: int = 1  # Numba / BLAS threads per worker process
    cluster: Optional[str] = None  # a Dask scheduler address (tcp://HOST:8786) or local:N
    shard_batches: int = DEFAULT_SHARD_BATCHES
    raise_unexpected: bool = False  # let unexpected per-image exceptions through (debugging)


@dataclass
class Outcome:
    summary: dict  # the results object (timm's fields and ours)
    accuracy: Accuracy
    records: dict[str, dict] = field(default_factory=dict)  # image -> record, for the dataset's images


Progress = Callable[[int, int], None]  # (images done, images in total)


def evaluate(dataset: Dataset, spec: ModelSpec, settings: Settings = Settings(), *,
             predictions: Optional[str] = None, resume: bool = False,
             real: Optional[dict[str, frozenset[int]]] = None, on_progress: Optional[Progress] = None,
             on_ready: Optional[Callable[[dict], None]] = None) -> Outcome:
    """Evaluate `spec` on `dataset`; records go to the `predictions` log (JSONL) as batches finish."""
    if settings.batch_size < 1:
        raise LevitError(f"--batch-size must be at least 1, got {settings.batch_size}")
    start = time.perf_counter()
    log = PredictionLog.open(predictions, resume) if predictions is not None else None
    names = {sample.image for sample in dataset.samples}
    records = {image: r for image, r in (log.records.items() if log else ()) if image in names}
    todo = [sample for sample in dataset.samples if sample.image not in records]
    facts: dict = {}

    def ready(model_info: dict) -> None:
        facts.update(model_info)
        if on_ready is not None:
            on_ready(model_info)

    try:
        if on_progress is not None:
            on_progress(len(records), len(dataset.samples))
        for batch_records in _run(spec, settings, todo, ready):
            if log is not None:
                log.append(batch_records)
            records.update((r["image"], r) for r in batch_records if r["image"] not in records)
            if on_progress is not None:
                on_progress(len(records), len(dataset.samples))
    finally:
        if log is not None:
            log.close()
    if not facts:  # everything was already in the log: no worker loaded the model
        ready(model_facts(spec.load()))
    seconds = time.perf_counter() - start
    accuracy = score(records, real)
    summary = {"model": facts["model"], **accuracy.summary(), "param_count": facts["param_count"],
               "img_size": settings.preprocessing.size, "crop_pct": settings.preprocessing.crop_pct,
               "interpolation": settings.preprocessing.interpolation,
               "images_per_second": round(len(todo) / seconds, 2) if seconds > 0 else 0.0,
               "wall_seconds": round(seconds, 3), "resumed": len(dataset.samples) - len(todo),
               "source": spec.describe(), "unreadable": accuracy.errors}
    return Outcome(summary, accuracy, records)


def evaluation_job(model, payload) -> list[dict]:
    """A worker's job: (items, preprocessing, batch size, raise_unexpected) -> records, batch by batch."""
    items, preprocessing, batch_size, raise_unexpected = payload
    records = []
    for start in range(0, len(items), batch_size):
        records += evaluate_batch(model, items[start:start + batch_size], preprocessing, raise_unexpected)
    return records


def _run(spec: ModelSpec, settings: Settings, todo: list, ready) -> Iterator[list[dict]]:
    """Record lists, one per finished shard, from the runner the settings choose."""
    items = [(s.image, s.path, s.label) for s in todo]
    if not items:
        return
    if settings.cluster:
        per_shard = settings.batch_size * settings.shard_batches
        bounds = [(i, min(i + per_shard, len(items))) for i in range(0, len(items), per_shard)]
    else:
        workers, bounds = plan_batches(len(items), settings.batch_size, settings.threads, settings.workers)
    payloads = ((i, (items[start:stop], settings.preprocessing, settings.batch_size, settings.raise_unexpected))
                for i, (start, stop) in enumerate(bounds))
    if settings.cluster:
        try:
            from levit_np.evaluation.dask_runner import run_shards
        except ImportError:
            raise LevitError("--cluster needs Dask: pip install 'levit-np[dask]'") from None
        results = run_shards(settings.cluster, spec, evaluation_job, payloads, threads=settings.threads,
                             on_ready=ready)
    else:
        results = run_batches(spec, evaluation_job, payloads, workers=workers, threads=settings.threads,
                              on_ready=ready)
    for _shard_id, shard_records in results:
        yield shard_records
