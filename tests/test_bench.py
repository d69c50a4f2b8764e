"""`levit bench` and levit_np.perf.bench: the protocol, the summary and the CLI's errors (never the timings)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from levit_cli.main import cli
from levit_np.perf import bench, timing
from levit_np.model.config import get_config
from levit_np.analysis.flops import total_flops


@pytest.fixture(scope="module")
def result():
    """One tiny real run: two of our backends, one round, batch 2 (workers are real subprocesses)."""
    settings = bench.Settings(variant="128s", batch=2, threads=1, rounds=1, seconds=0.01,
                              backends=("numba", "numpy"))
    return bench.run_bench(settings)


def test_both_backends_report_the_same_logits(result):
    rows = result["backends"]
    assert set(rows) == {"numba", "numpy"}
    assert rows["numba"]["max_rel_diff_vs_ours"] == 0.0
    assert rows["numpy"]["max_rel_diff_vs_ours"] < 1e-4, rows["numpy"]["max_rel_diff_vs_ours"]


def test_summary_is_consistent(result):
    macs = total_flops(get_config("levit_128s"))
    assert result["macs_per_image"] == macs == 305_108_946
    for row in result["backends"].values():
        lat, thr = row["latency_ms"], row["throughput_img_s"]
        assert lat["samples"] >= 3 and thr["samples"] >= 2
        assert lat["p25"] <= lat["median"] <= lat["p75"]
        assert thr["p25"] <= thr["median"] <= thr["p75"]
        assert row["gflops_latency"] == pytest.approx(2 * macs / (lat["median"] / 1e3) / 1e9)
    numba, numpy = result["backends"]["numba"], result["backends"]["numpy"]
    assert numba["ours_latency_ratio"] == 1.0
    assert numpy["ours_latency_ratio"] == pytest.approx(numba["latency_ms"]["median"] / numpy["latency_ms"]["median"])


def test_missing_runtime_is_skipped(monkeypatch):
    monkeypatch.setattr(bench, "missing_packages", lambda name: ["openvino"] if name == "openvino" else [])
    settings = bench.Settings(variant="128s", batch=1, rounds=1, seconds=0.01, backends=("openvino",))
    out = bench.run_bench(settings)
    assert out["backends"]["openvino"] == {"skipped": "not installed: openvino"}


def test_quantiles():
    assert timing.quantiles([4.0, 1.0, 3.0, 2.0, 5.0]) == (2.0, 3.0, 4.0)


def test_thread_environment_pins_every_pool():
    env = timing.thread_environment(3)
    assert all(env[name] == "3" for name in timing.THREAD_VARIABLES)


def test_cli_json(monkeypatch):
    seen = {}

    def fake_run(settings, log=None):
        seen["settings"] = settings
        return {"variant": settings.variant, "backends": {}}

    monkeypatch.setattr(bench, "run_bench", fake_run)
    for name in timing.THREAD_VARIABLES:  # --threads writes them into os.environ: restore them afterwards
        monkeypatch.setenv(name, "2")
    done = CliRunner().invoke(cli, ["--threads", "2", "bench", "--model", "256", "--backends", "numba, numpy",
                                    "-b", "8", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"variant": "levit_256", "backends": {}}
    assert seen["settings"].threads == 2 and seen["settings"].backends == ("numba", "numpy")
    assert seen["settings"].batch == 8


@pytest.mark.parametrize("args,message", [(["--backends", "numba,tensorflow"], "unknown backend(s) tensorflow"),
                                          (["--model", "levit_999"], "unknown LeViT variant"),
                                          (["-b", "0"], "0 is not in the range")])
def test_cli_bad_input_is_one_line(args, message):
    done = CliRunner().invoke(cli, ["bench", *args])
    assert done.exit_code != 0
    assert message in done.output
    assert "Traceback" not in done.output
