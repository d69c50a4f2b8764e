"""`levit tradeoff`: the published table, the FLOP counts, the planning, the summary and the CLI (never timings)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

from levit_cli.main import cli
from levit_np.perf import published, timing, tradeoff
from levit_np.perf.published import BY_KEY, TABLE3

HAVE_TIMM = all(importlib.util.find_spec(name) for name in ("torch", "timm"))


@pytest.fixture(scope="module")
def result():
    """One tiny real run: LeViT-128S and EfficientNet-B0 in eager PyTorch, LeViT-128S also on our numba path
    (holding the timm model's weights), batch 2, two rounds, a fraction of a second of timed calls."""
    if not HAVE_TIMM:
        pytest.skip("torch and timm are not installed (see README: pip install --no-deps timm ...)")
    settings = tradeoff.Settings(models=published.select("levit_128s,efficientnet_b0"), runtimes=("torch", "numba"),
                                 batch=2, threads=1, budget=0.2, rounds=2)
    return tradeoff.run_tradeoff(settings)


def test_table3_is_one_table_with_its_source():
    assert [m.key for m in TABLE3] == list(BY_KEY)  # keys unique
    assert {m.family for m in TABLE3} == set(published.FAMILIES)
    assert "2104.01136" in published.SOURCE and "Table 3" in published.SOURCE
    assert [m.name for m in TABLE3 if m.family == "EfficientNet"] == [f"EfficientNet-B{i}" for i in range(5)]
    assert BY_KEY["levit_192"].intel_img_s == 65.0 and BY_KEY["efficientnet_b2"].intel_img_s == 13.1


def test_levit_counts_equal_the_levit_flops_command():
    done = CliRunner().invoke(cli, ["flops", "--json"])
    assert done.exit_code == 0, done.output
    command = {row["model"]: (row["params"], row["flops"]) for row in json.loads(done.stdout)}
    levits = [m for m in TABLE3 if m.family == "LeViT"]
    assert {m.key for m in levits} == set(command)
    for model in levits:
        assert published.counted(model) == command[model.key], model.key
        params, macs = command[model.key]
        assert abs(macs / 1e6 - model.flops_m) / model.flops_m < 0.01, (model.key, macs)  # Table 3's rounding
        assert abs(params / 1e6 - model.params_m) < 0.06, (model.key, params)
    assert published.counted(BY_KEY["efficientnet_b2"]) == (9_200_000, 1_000_000_000)


def test_claim_pairs_are_at_equal_accuracy_and_the_paper_says_5x():
    for levit, effnet in published.CLAIM_PAIRS:
        assert BY_KEY[levit].family == "LeViT" and BY_KEY[effnet].family == "EfficientNet"
        assert abs(BY_KEY[levit].top1 - BY_KEY[effnet].top1) <= 0.1
    ratio = BY_KEY["levit_192"].intel_img_s / BY_KEY["efficientnet_b2"].intel_img_s
    assert ratio == pytest.approx(published.CLAIMED_SPEEDUP, abs=0.05), ratio


def test_select_takes_families_and_keys_in_table_order():
    assert [m.key for m in published.select("deit, LeViT-128S")] == ["levit_128s", "deit_tiny", "deit_small"]
    assert len(published.select("efficientnet")) == 5
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        published.select("levit_192,resnet50")


def test_quantiles_and_calls_per_turn():
    assert timing.quantiles([4.0, 1.0, 3.0, 2.0, 5.0]) == (2.0, 3.0, 4.0)
    assert tradeoff.calls_per_turn(first_call_s=0.1, share_s=1.05) == 10
    assert tradeoff.calls_per_turn(first_call_s=3.0, share_s=1.0) == 1  # a slow pair still makes one call


def test_tiny_run_measures_every_pair_and_checks_numba_against_eager(result):
    rows = {m["key"]: m for m in result["models"]}
    assert set(rows) == {"levit_128s", "efficientnet_b0"}
    assert set(rows["levit_128s"]["runtimes"]) == {"torch", "numba"}
    assert set(rows["efficientnet_b0"]["runtimes"]) == {"torch"}  # numba runs LeViT only
    assert rows["levit_128s"]["flops"] == 305_108_946 and rows["levit_128s"]["flops_source"] == "levit flops"
    assert rows["efficientnet_b0"]["resolution"] == 224
    for row in rows.values():
        for runtime, value in row["runtimes"].items():
            assert value["samples"] >= result["rounds"], (row["key"], runtime)
            assert value["img_s_p25"] <= value["img_s"] <= value["img_s_p75"]
            assert value["img_s"] == pytest.approx(result["batch"] / (value["ms_per_call"] / 1e3))
    numba = rows["levit_128s"]["runtimes"]["numba"]
    print(f"numba vs eager timm LeViT-128S: {numba['max_rel_diff_vs_eager']:.2e}")
    assert numba["max_rel_diff_vs_eager"] < 1e-4 and "timm model's weights" in numba["detail"]
    assert result["claims"] == []  # neither claim pair was asked for


def test_claims_divide_levit_by_efficientnet_per_runtime():
    def row(key, runtimes):
        model = BY_KEY[key]
        values = {r: {"img_s": v} for r, v in runtimes.items()}
        best = max(runtimes, key=runtimes.get)
        return {"key": key, "name": model.name, "top1": model.top1, "paper_intel_img_s": model.intel_img_s,
                "runtimes": values, "best": {"runtime": best, "img_s": runtimes[best]}}

    rows = [row("levit_192", {"torch": 40.0, "openvino": 60.0, "numba": 80.0}),
            row("efficientnet_b2", {"torch": 8.0, "openvino": 30.0})]
    (claim,) = tradeoff.claims(rows)
    assert claim["ratios"] == {"torch": 5.0, "openvino": 2.0, "best": 80.0 / 30.0}
    assert claim["paper_ratio"] == pytest.approx(65.0 / 13.1)


def test_a_runtime_not_installed_is_listed_not_fatal(monkeypatch):
    monkeypatch.setattr(tradeoff, "missing", lambda names: ["openvino"] if "openvino" in names else [])
    settings = tradeoff.Settings(models=published.select("efficientnet_b0"), runtimes=("openvino",), budget=1)
    out = tradeoff.run_tradeoff(settings)
    assert out["models"][0]["runtimes"] == {"openvino": {"skipped": "not installed: openvino"}}


def test_cli_prints_the_table_and_the_figure(result, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    seen = {}

    def fake_run(settings, progress):
        seen["settings"] = settings
        return result

    monkeypatch.setattr(tradeoff, "run_tradeoff", fake_run)
    figure = tmp_path / "tradeoff.png"
    done = CliRunner().invoke(cli, ["tradeoff", "--models", "levit_128s,efficientnet_b0", "--runtimes", "torch",
                                    "-b", "4", "--budget", "5", "--plot", str(figure)])
    assert done.exit_code == 0, done.output
    assert "LeViT-128S" in done.stdout and "EfficientNet-B0" in done.stdout and "131.1" in done.stdout
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert seen["settings"].batch == 4 and seen["settings"].runtimes == ("torch",)
    assert [m.key for m in seen["settings"].models] == ["levit_128s", "efficientnet_b0"]


def test_cli_json_is_the_result(result, monkeypatch):
    monkeypatch.setattr(tradeoff, "run_tradeoff", lambda settings, progress: result)
    done = CliRunner().invoke(cli, ["tradeoff", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == result


@pytest.mark.parametrize("args,message", [(["--models", "levit_999"], "unknown model 'levit_999'"),
                                          (["--runtimes", "torch,tensorflow"], "unknown runtime(s) tensorflow"),
                                          (["--plot", "no-such-folder/fig.png"], "does not exist"),
                                          (["--plot", "fig.txt"], "must end in .png"),
                                          (["-b", "0"], "0 is not in the range")])
def test_cli_bad_input_is_one_line_before_measuring(args, message, monkeypatch):
    monkeypatch.setattr(tradeoff, "run_tradeoff", lambda settings, progress: pytest.fail("measured anyway"))
    done = CliRunner().invoke(cli, ["tradeoff", *args])
    assert done.exit_code != 0
    assert message in done.output
    assert "Traceback" not in done.output


def test_torch_operator_kinds_cover_the_call():
    torch = pytest.importorskip("torch")
    import numpy as np

    from levit_np.perf.operator_times import torch_operator_times

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3, groups=8),
                                torch.nn.Conv2d(8, 16, 1), torch.nn.BatchNorm2d(16), torch.nn.SiLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 4)).eval()
    x = np.zeros((2, 3, 16, 16), np.float32)
    times = torch_operator_times(model, x, calls=2)
    assert set(times) == {"other conv", "depthwise conv", "1x1 conv", "norm", "activation", "pooling", "linear",
                          "other", "total"}
    parts = sum(v for k, v in times.items() if k != "total")
    np.testing.assert_allclose(parts, times["total"], rtol=1e-9)  # "other" is the remainder
    assert all(v >= 0 for v in times.values())


def test_cli_ops_prints_one_table_per_runtime(monkeypatch):
    profile = {"cpu": "a CPU", "threads": 1, "batch": 16, "calls": 3, "models": [
        {"key": "efficientnet_b2", "name": "EfficientNet-B2", "resolution": 260,
         "runtimes": {"torch": {"depthwise conv": 0.6, "1x1 conv": 0.3, "pooling": 0.001, "other": 0.099,
                                "total": 1.0},
                      "openvino": {"skipped": "not installed: openvino"}}}]}
    seen = {}

    def fake_profile(settings, calls, progress):
        seen["calls"] = calls
        return profile

    monkeypatch.setattr(tradeoff, "operator_profile", fake_profile)
    done = CliRunner().invoke(cli, ["tradeoff", "--ops", "--models", "efficientnet_b2", "--rounds", "4"])
    assert done.exit_code == 0, done.output
    assert seen["calls"] == 4
    assert "depthwise conv" in done.stdout and "600.0 (60%)" in done.stdout and "smaller ops" in done.stdout
    assert "not profiled" in done.stderr and "EfficientNet-B2 in openvino" in done.stderr


def test_cli_ops_does_not_draw():
    done = CliRunner().invoke(cli, ["tradeoff", "--ops", "--plot", "fig.png"])
    assert done.exit_code != 0 and "does not go with --ops" in done.output
