"""`levit eval` on Dask: a LocalCluster on loopback gives the one-machine numbers, also when a worker is
SIGKILLed mid-run (its shards run again elsewhere; nothing lost, nothing counted twice)."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from click.testing import CliRunner

distributed = pytest.importorskip("distributed")

from levit_np.evaluation.datasets import open_dataset  # noqa: E402
from levit_np.evaluation.engine import ModelSpec  # noqa: E402
from levit_np.evaluation.evaluate import Settings, evaluate  # noqa: E402
from levit_cli.main import cli  # noqa: E402

from eval_fixtures import EXPECTED_TOP1, EXPECTED_TOP5, RANKS, image_folder, shared_known_dataset  # noqa: E402

PROB_ATOL = 1e-5


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    return shared_known_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


def test_killed_worker_loses_nothing_and_counts_nothing_twice(known, cluster, tmp_path):
    dataset = open_dataset(image_folder(known, tmp_path / "val"))
    spec = ModelSpec(weights=str(known.weights), backend="numpy")
    here = evaluate(dataset, spec, Settings(batch_size=1, workers=0))

    client = distributed.Client(cluster)
    pids = client.run(os.getpid)  # worker address -> pid
    killed = []

    def kill_a_busy_worker(done: int, total: int) -> None:
        if killed or done == 0:
            return
        processing = client.processing()
        busy = [address for address, keys in processing.items() if keys and address in pids]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    predictions = tmp_path / "p.jsonl"
    there = evaluate(dataset, spec, Settings(batch_size=1, cluster=cluster.scheduler_address, shard_batches=1),
                     predictions=str(predictions), on_progress=kill_a_busy_worker)
    client.close()
    assert killed, "no worker was busy when the first shard finished"
    print(f"killed {killed[0]}; top1 {there.summary['top1']} top5 {there.summary['top5']}")
    for key in ("top1", "top5", "images", "errors"):
        assert there.summary[key] == here.summary[key], key
    assert there.summary["top1"] == pytest.approx(EXPECTED_TOP1, abs=1e-3)
    assert there.summary["top5"] == pytest.approx(EXPECTED_TOP5, abs=1e-3)
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert sorted(line["image"] for line in lines) == sorted(here.records)  # each image exactly once
    for line in lines:
        reference = here.records[line["image"]]
        assert line["top5"] == reference["top5"]
        np.testing.assert_allclose(line["probs"], reference["probs"], rtol=0, atol=PROB_ATOL)


def test_cli_on_a_running_cluster_and_a_bad_address(known, cluster, tmp_path):
    data = image_folder(known, tmp_path / "val")
    result = CliRunner().invoke(cli, ["eval", str(data), "--weights", str(known.weights), "--json",
                                      "--cluster", cluster.scheduler_address, "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images"] == len(RANKS)
    assert summary["top1"] == pytest.approx(EXPECTED_TOP1, abs=1e-3)
    assert summary["top5"] == pytest.approx(EXPECTED_TOP5, abs=1e-3)
    result = CliRunner().invoke(cli, ["eval", str(data), "--weights", str(known.weights), "--cluster", "local:x"])
    assert result.exit_code != 0 and "expected local:N" in result.output
