"""The evaluation's shards on a Dask cluster (`dask.distributed`, the optional extra `levit-np[dask]`).

- `local:N` starts a LocalCluster of N single-threaded worker processes on 127.0.0.1; any other address is a
  running scheduler (`tcp://HOST:8786`). Every worker must read the dataset and the weights at the same paths
  (a shared filesystem).
- `ModelPlugin` loads the model once per worker process, after pinning the Numba and BLAS thread counts (a
  LocalCluster's worker processes also get them in their environment before they start: Dask's nanny sets only
  the OpenMP/MKL/OpenBLAS variables by itself).
- Shards are submitted at once with `retries`; results stream back with `as_completed`. When a worker dies,
  the scheduler runs its shards again on another worker; each shard's result arrives once, and the caller
  keys records by image, so nothing is lost or counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Optional

from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from levit_np.errors import LevitError, one_line
from levit_np.evaluation.engine import ModelSpec, model_facts, pin_threads
from levit_np.perf.timing import thread_variables

PLUGIN_NAME = "levit-model"
RETRIES = 3  # extra attempts per shard (a shard also fails when Dask's allowed-failures kills it)


class ClusterError(LevitError):
    """The cluster address is malformed or unreachable, or a shard failed on every attempt."""


class ModelPlugin(WorkerPlugin):
    """Loads the model once per worker process; tasks find it with `worker_model()`."""

    name = PLUGIN_NAME

    def __init__(self, spec: ModelSpec, threads: int):
        self.spec, self.threads = spec, threads
        self.model = None

    def setup(self, worker) -> None:
        pin_threads(self.threads)
        self.model = self.spec.load()


def worker_model():
    """The model of the worker process this task runs in."""
    return get_worker().plugins[PLUGIN_NAME].model


def run_job(job: Callable[[Any, Any], Any], payload: Any) -> Any:
    """A task: `job(model, payload)` on the worker's model."""
    return job(worker_model(), payload)


def describe_model() -> dict:
    """A task: `model_facts` of the worker's model."""
    return model_facts(worker_model())


def run_shards(address: str, spec: ModelSpec, job: Callable[[Any, Any], Any], shards: Iterable[tuple[int, Any]], *,
               threads: int = 1, on_ready: Optional[Callable[[dict], None]] = None) -> Iterator[tuple[int, Any]]:
    """Yield (shard id, job(model, payload)) for every shard, in the order shards finish on the cluster."""
    with _client(address, threads) as client:
        try:
            client.register_plugin(ModelPlugin(spec, threads))
        except Exception as e:
            raise ClusterError(f"a worker could not load the model: {one_line(e)}") from None
        if on_ready is not None:
            on_ready(client.submit(describe_model, pure=False).result())
        shards = list(shards)
        futures = {client.submit(run_job, job, payload, key=f"levit-shard-{shard_id}-{_token()}", retries=RETRIES,
                                 pure=False): shard_id for shard_id, payload in shards}
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as e:
                raise ClusterError(f"shard {futures[future]} failed: {one_line(e)}") from None
            yield futures[future], result
            future.release()


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


class _client:
    """A Client on `address`, or on a LocalCluster for `local:N`; both closed on exit."""

    def __init__(self, address: str, threads: int):
        self.address, self.threads, self.cluster, self.client = address, threads, None, None

    def __enter__(self) -> Client:
        if self.address.startswith("local:"):
            count = self.address.split(":", 1)[1]
            if not count.isdigit() or int(count) < 1:
                raise ClusterError(f"--cluster {self.address}: expected local:N with N >= 1 worker processes")
            self.cluster = LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=None,
                                        env=thread_variables(self.threads))
            self.client = Client(self.cluster)
            return self.client
        if "://" not in self.address:
            raise ClusterError(f"--cluster {self.address}: expected a scheduler address like tcp://HOST:8786, or local:N")
        try:
            self.client = Client(self.address, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.address}: {one_line(e)}") from None
        return self.client

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
