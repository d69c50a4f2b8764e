"""One consistent command line: the same model names, --threads and backend rule on every command, `levit models`,
and `levit bias` that asks for weights instead of downloading."""

from __future__ import annotations

import json
import os

import click
import pytest

from levit_np.analysis.flops import summary
from levit_np.model.config import VARIANTS
from levit_np.model.params import random_params
from levit_np.weights.hdf5_file import write_weights
from conftest import invoke_cli
from levit_cli.backend_option import BACKEND_RULE, DEFAULT_BACKEND
from levit_cli.inspect_options import NO_WEIGHTS
from levit_cli.main import COMMANDS, cli
from levit_cli.options import MODEL_NAME

COMPUTING = ("predict", "trace", "bias", "profile", "bench")
NAME_OPTIONS = {"model", "variant", "random_variant"}


def command(name: str) -> click.Command:
    return cli.get_command(None, name)


def test_every_model_name_option_uses_the_one_parser():
    found = []
    for name in COMMANDS:
        for param in command(name).params:
            if param.name in NAME_OPTIONS:
                assert param.type is MODEL_NAME, f"levit {name} {param.opts}"
                found.append(f"{name} {param.opts[0]}")
    assert sorted(found) == sorted(["predict --model", "trace --model", "trace --random", "bias --model",
                                    "bias --random", "flops --model", "profile --model", "bench --model",
                                    "convert --variant", "eval --model", "export --variant", "export --random",
                                    "figure --model"])


@pytest.mark.parametrize("spelling", ["levit_256", "256", "LeViT-256", "levit256", "LEVIT_256"])
def test_flops_accepts_every_spelling(spelling):
    result = invoke_cli("flops", "--model", spelling, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "levit_256"


def test_an_unknown_name_is_the_same_one_line_error_everywhere():
    for args in (["flops", "--model", "x1"], ["profile", "--model", "x1"], ["bench", "--model", "x1"],
                 ["bias", "--random", "x1"], ["predict", "--model", "x1", "a.jpg"]):
        result = invoke_cli(*args)
        assert result.exit_code == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "unknown LeViT variant 'x1'; known: levit_128s, levit_128" in lines[0], args


def test_every_computing_command_takes_threads_after_its_name():
    for name in COMPUTING:
        assert "threads" in {param.name for param in command(name).params}, name


def test_profile_takes_threads_after_its_name():
    result = invoke_cli("profile", "--model", "128s", "--backend", "numpy", "--threads", "1", "--repeats", "1",
                        "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["threads"] == "1" and data["backend"] == "numpy" and os.environ["OPENBLAS_NUM_THREADS"] == "1"


def test_one_backend_default_stated_in_every_help():
    with_backend = [name for name in COMMANDS if "backend" in {p.name for p in command(name).params}]
    assert sorted(with_backend) == ["eval", "predict", "profile", "trace"]
    for name in with_backend:
        option = next(p for p in command(name).params if p.name == "backend")
        assert option.default == DEFAULT_BACKEND == "auto", name
        help_text = " ".join(invoke_cli(name, "--help").stdout.split())
        assert BACKEND_RULE in help_text, name


def test_profile_ablation_runs_numpy_by_the_rule():
    result = invoke_cli("profile", "--ablation", "A7", "--repeats", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["backend"] == "numpy"


def test_profile_model_runs_numba_by_default():
    """The rule picks by the command's work: ten passes of LeViT-128S (3.05 G multiply-adds) run numba."""
    pytest.importorskip("numba")
    result = invoke_cli("profile", "--model", "LeViT-128S", "--repeats", "10", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["backend"] == "numba" and data["model"] == "levit_128s"


def test_bias_without_weights_points_to_random_and_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LEVIT_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LEVIT_WEIGHTS_URL", "http://127.0.0.1:9")  # a download would fail loudly
    result = invoke_cli("bias")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {NO_WEIGHTS} (see 'cli bias --help')"
    assert "--random NAME" in NO_WEIGHTS and "--weights FILE" in NO_WEIGHTS
    assert not (tmp_path / "cache").exists()


def test_models_lists_variants_checkpoints_counts_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEVIT_HOME", str(tmp_path))
    cfg = VARIANTS["levit_192"]
    write_weights(tmp_path / "levit_192.h5", cfg, random_params(cfg))
    data = json.loads(invoke_cli("models", "--json").stdout)
    assert data["cache"] == str(tmp_path)
    assert [row["name"] for row in data["models"]] == list(VARIANTS)
    for row in data["models"]:
        counts = summary(VARIANTS[row["name"]])
        assert (row["params"], row["flops"]) == (counts["params"], counts["flops"])
        assert row["cached"] == (str(tmp_path / "levit_192.h5") if row["name"] == "levit_192" else None)
    assert data["models"][0]["checkpoint"] == "LeViT-128S-96703c44.pth"
    table = invoke_cli("models").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in table if line.startswith("levit_")}
    assert list(rows) == list(VARIANTS)
    assert rows["levit_192"][-1] == "yes" and rows["levit_128s"][-1] == "no"
    assert rows["levit_128s"][1:4] == ["LeViT-128S-96703c44.pth", "7.8", "305"]
