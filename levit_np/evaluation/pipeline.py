"""A streaming pipeline on one machine: worker processes that each load the model once, then take batches of
image files from a shared queue, decode and preprocess them and run the model on them.

Why whole batches per worker rather than decoder processes feeding one model process: preprocessing a
500x375 JPEG costs a third to a half of LeViT-128S's forward pass on one core, so a decoder and a model side by
side leave one core idle much of the time, and a model with two threads fights the decoder for the second
core. With one single-threaded worker per core, one worker decodes while another computes and every core is
busy all the time, so the rate approaches cores / (preprocess + model time per image). The work crosses
processes as file names in and a few numbers per image out; no pixels are copied between processes.

At most `2 x workers` batches are queued or running at any time, so memory stays flat however large the
dataset. Results arrive in the order batches finish; each carries its batch id (`ordered` restores input
order when a caller needs it). Workers start with the thread variables pinned in their environment (spawn
context: a fresh interpreter, so NumPy and Numba read them at import).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Optional

from levit_np.errors import LevitError, one_line
from levit_np.evaluation.engine import ModelSpec, model_facts, pin_threads
from levit_np.perf.timing import thread_variables

POLL_SECONDS = 0.5  # how often the parent checks that its workers are alive while it waits
Job = Callable[[Any, Any], Any]  # (model, batch payload) -> batch result; a module-level function


class WorkerError(LevitError):
    """A worker could not load the model, or died while working."""


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def choose_workers(batches: int, threads: int = 1, workers: Optional[int] = None) -> int:
    """Worker processes: as asked, else one per `threads` cores (never more than there are batches)."""
    if workers is not None:
        return workers
    return max(1, min(usable_cores() // max(1, threads), batches))


def run_batches(spec: ModelSpec, job: Job, batches: Iterable[tuple[int, Any]], *, workers: int, threads: int = 1,
                on_ready: Optional[Callable[[dict], None]] = None) -> Iterator[tuple[int, Any]]:
    """Yield (batch id, job(model, payload)) for every (batch id, payload), in the order batches finish.

    `workers=0` runs everything in this process (the model loads here, thread counts as they are).
    `on_ready(facts)` is called once with `model_facts` of the loaded model.
    """
    if workers == 0:
        model = spec.load()
        if on_ready is not None:
            on_ready(model_facts(model))
        for batch_id, payload in batches:
            yield batch_id, job(model, payload)
        return
    yield from _Pool(spec, job, workers, threads).run(iter(batches), on_ready)


TAIL_SPLIT = 4  # the last batches are cut into pieces this many times smaller, so workers finish together


def batch_bounds(count: int, batch_size: int, workers: int) -> list[tuple[int, int]]:
    """(start, stop) of each batch of `count` items: full batches, then the last `workers` to `workers + 1`
    batches' worth of items in batches a TAIL_SPLIT-th the size, so that at the end no worker waits long for
    another's last batch (with whole batches one core idles for up to a batch's time).

    Every item is in exactly one batch, in order; no batch is larger than `batch_size`.
    """
    if workers <= 1:
        return [(i, min(i + batch_size, count)) for i in range(0, count, batch_size)]
    head = max(0, count - workers * batch_size) // batch_size * batch_size
    small = max(1, batch_size // TAIL_SPLIT)
    return ([(i, i + batch_size) for i in range(0, head, batch_size)]
            + [(i, min(i + small, count)) for i in range(head, count, small)])


def plan_batches(count: int, batch_size: int, threads: int = 1,
                 workers: Optional[int] = None) -> tuple[int, list[tuple[int, int]]]:
    """(worker processes, `batch_bounds` for them) for `count` items: `choose_workers` and the batches together."""
    processes = choose_workers(-(-count // batch_size), threads, workers)
    return processes, batch_bounds(count, batch_size, processes)


def ordered(results: Iterable[tuple[int, Any]]) -> Iterator[Any]:
    """Results keyed 0, 1, 2, ... in any order -> the results in key order, each as soon as it can go out."""
    waiting, next_id = {}, 0
    for batch_id, result in results:
        waiting[batch_id] = result
        while next_id in waiting:
            yield waiting.pop(next_id)
            next_id += 1


class _Pool:
    def __init__(self, spec: ModelSpec, job: Job, workers: int, threads: int):
        import multiprocessing

        self.context = multiprocessing.get_context("spawn")
        self.spec, self.job, self.workers, self.threads = spec, job, workers, threads
        self.tasks = self.context.Queue()
        self.results = self.context.Queue()
        self.processes = []

    def run(self, batches: Iterator[tuple[int, Any]], on_ready) -> Iterator[tuple[int, Any]]:
        try:
            with _environment(thread_variables(self.threads)):
                for _ in range(self.workers):
                    process = self.context.Process(target=_worker_main, daemon=True,
                                                   args=(self.spec, self.threads, self.job, self.tasks, self.results))
                    process.start()
                    self.processes.append(process)
            yield from self._stream(batches, on_ready)
            for _ in self.processes:
                self.tasks.put(None)
            for process in self.processes:
                process.join(timeout=10)
        finally:
            for process in self.processes:
                if process.is_alive():
                    process.kill()
                process.join()
            self.tasks.close()
            self.results.close()

    def _stream(self, batches: Iterator[tuple[int, Any]], on_ready) -> Iterator[tuple[int, Any]]:
        in_flight, limit, ready = 0, 2 * self.workers, False
        exhausted = False
        while True:
            while not exhausted and in_flight < limit:
                item = next(batches, None)
                if item is None:
                    exhausted = True
                    break
                self.tasks.put(item)
                in_flight += 1
            if exhausted and in_flight == 0:
                return
            message = self._next_message()
            kind = message[0]
            if kind == "ready":
                if not ready and on_ready is not None:
                    on_ready(message[1])
                ready = True
            elif kind == "done":
                in_flight -= 1
                yield message[1], message[2]
            else:  # "failed"
                raise WorkerError(message[1])

    def _next_message(self) -> tuple:
        while True:
            try:
                return self.results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode is not None]
                if dead:
                    raise WorkerError(f"a worker process died (exit code {dead[0].exitcode}); "
                                      "rerun with --resume to continue") from None


def _exit_with_parent(parent: int) -> None:
    """A worker's watchdog thread: end the process at once when its parent is gone (killed: nobody will read
    its results), wherever the main thread is (loading the model, in a batch, or flushing a queue)."""
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(0)


def _worker_main(spec: ModelSpec, threads: int, job: Job, tasks, results) -> None:
    """A worker process: pin threads, load the model, then run batches until told to stop (None)."""
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    pin_threads(threads)
    try:
        model = spec.load()
        results.put(("ready", model_facts(model)))
    except Exception as e:  # the parent turns this into a one-line error
        results.put(("failed", _describe(e)))
        return
    while True:
        try:
            task = tasks.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        if task is None:
            _exit_now(results)
        batch_id, payload = task
        try:
            results.put(("done", batch_id, job(model, payload)))
        except Exception as e:
            results.put(("failed", f"batch {batch_id} failed in a worker process: {_describe(e)}"))
            return


def _exit_now(results) -> None:
    """End a worker whose work is done: flush its results to the pipe, then leave without the interpreter's
    shutdown (with Numba loaded that takes about 0.6 s per process, and the parent waits for it)."""
    results.close()
    results.join_thread()
    os._exit(0)


def _describe(e: BaseException) -> str:
    """One line for the parent: our errors' own text, the type and text of anything else."""
    return one_line(e) if isinstance(e, (LevitError, OSError)) else f"{type(e).__name__}: {one_line(e)}"


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables while child processes start (they copy the environment), then restore."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def classify_in_workers(spec: ModelSpec, paths: list[str], *, k: int, batch_size: int, crop_pct: float,
                        size: tuple[int, int] = (224, 224), names=None, workers: Optional[int] = None, threads: int = 1,
                        on_progress: Optional[Callable[[int, int], None]] = None,
                        raise_unexpected: bool = False) -> Iterator:
    """`levit_np.images.classify.classify` in worker processes: one ImageResult per path, in input order."""
    from levit_np.evaluation.engine import classify_job

    processes, bounds = plan_batches(len(paths), batch_size, threads, workers)
    chunks = [paths[start:stop] for start, stop in bounds]
    payloads = ((i, (chunk, k, crop_pct, size, names, raise_unexpected)) for i, chunk in enumerate(chunks))
    done = 0
    finished = run_batches(spec, classify_job, payloads, workers=processes, threads=threads)
    for results in ordered(finished):
        done += len(results)
        if on_progress is not None:
            on_progress(done, len(paths))
        yield from results
