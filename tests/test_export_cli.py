"""`levit export` on the command line: outputs, metadata, determinism, and one-line errors that leave no file."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

import pytest
from click.testing import CliRunner

from levit_cli.main import cli
from levit_np.export.onnx_export import ExportError, onnx_bytes, random_source
from levit_np.export.settings import ExportSettings, parse_batch
from levit_np.model.config import get_config
from levit_np.model.params import random_params
from levit_np.weights.fileio import sha256_file

onnx = pytest.importorskip("onnx", reason="levit export needs onnx: pip install 'levit-np[onnx]'")


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def assert_one_line_failure(result, needle: str) -> None:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and needle in lines[0], lines[0]


def metadata(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_random_export_twice_gives_the_same_bytes(tmp_path):
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    result = run("export", "--random", "128s", "--seed", 3, "-o", first, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["variant"] == "levit_128s" and summary["batch"] == "dynamic" and summary["opset"] == 17
    assert summary["bytes"] == first.stat().st_size
    assert run("export", "--random", "128s", "--seed", 3, "-o", second).exit_code == 0
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]  # no temporary file left


def test_h5_and_pth_give_the_same_graph_and_name_their_sources(tmp_path, official_pth):
    h5 = tmp_path / "w.h5"
    assert run("convert", official_pth, "-o", h5).exit_code == 0
    from_pth, from_h5 = tmp_path / "pth.onnx", tmp_path / "h5.onnx"
    assert run("export", official_pth, "-o", from_pth, "--size", 224, 224).exit_code == 0
    assert run("export", h5, "-o", from_h5).exit_code == 0
    assert onnx.load(str(from_pth)).graph == onnx.load(str(from_h5)).graph
    meta = metadata(from_h5)
    assert meta["weights_file"] == "w.h5" and meta["weights_sha256"] == sha256_file(h5)
    assert meta["source_name"] == official_pth.name and meta["source_sha256"] == sha256_file(official_pth)
    assert meta["source_layout"] == "official" and meta["variant"] == "levit_128s"


def test_metadata_records_size_batch_and_preprocessing(tmp_path):
    out = tmp_path / "m.onnx"
    result = run("export", "--random", "128s", "-o", out, "--batch", 2, "--size", 160, 192, "--opset", 18,
                 "--crop-pct", 0.9)
    assert result.exit_code == 0, result.output
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 18
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 160, 192]
    meta = metadata(out)
    assert meta["crop"] == "[160, 192]" and meta["crop_pct"] == "0.9"
    assert json.loads(meta["resize"]) == {"cover": [177, 213]}  # floor(160 / 0.9), floor(192 / 0.9)
    assert json.loads(meta["config"])["name"] == "levit_128s"


@pytest.mark.parametrize("args, needle", [
    (["--random", "levit_999", "-o", "{tmp}/x.onnx"], "unknown LeViT variant 'levit_999'"),
    (["--random", "128s", "-o", "{tmp}/missing/x.onnx"], "does not exist"),
    (["--random", "128s", "-o", "{tmp}/dir.onnx"], "is a directory"),
    (["--random", "128s", "-o", "{tmp}/x.txt"], "must end in .onnx"),
    (["--random", "128s", "-o", "{tmp}/x.onnx", "--size", 100, 100], "multiples of 16, got 100x100"),
    (["--random", "128s", "-o", "{tmp}/x.onnx", "--size", 2048, 2048], "above 1024"),
    (["--random", "128s", "-o", "{tmp}/x.onnx", "--opset", 13], "opset 13 is not supported"),
    (["--random", "128s", "-o", "{tmp}/x.onnx", "--opset", 99], "opset 99 is not supported"),
    (["--random", "128s", "-o", "{tmp}/x.onnx", "--batch", "0"], "batch must be a positive integer"),
    (["--random", "128s", "-o", "{tmp}/x.onnx", "--batch", "many"], "batch must be a positive integer"),
    (["{tmp}/junk.pth", "-o", "{tmp}/x.onnx"], "junk.pth"),
    (["{tmp}/nothing.pth", "-o", "{tmp}/x.onnx"], "no such file"),
    (["{tmp}/junk.pth", "--random", "128s", "-o", "{tmp}/x.onnx"], "exactly one"),
    (["-o", "{tmp}/x.onnx"], "exactly one"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, needle):
    (tmp_path / "junk.pth").write_text("not a checkpoint\n")
    (tmp_path / "dir.onnx").mkdir()
    before = sorted(tmp_path.iterdir())
    assert_one_line_failure(run("export", *[str(a).format(tmp=tmp_path) for a in args]), needle)
    assert sorted(tmp_path.iterdir()) == before


def test_failed_write_keeps_the_old_file_and_leaves_no_part(tmp_path, monkeypatch):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the previous export")

    def write_half_then_fail(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_half_then_fail)
    assert_one_line_failure(run("export", "--random", "128s", "-o", out), "No space left on device")
    assert out.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_missing_onnx_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    assert_one_line_failure(run("export", "--random", "128s", "-o", tmp_path / "x.onnx"), "levit-np[onnx]")
    assert list(tmp_path.iterdir()) == []


def test_ablation_configs_are_refused():
    cfg = dataclasses.replace(get_config("128s"), name="levit_128s_ln", norm="ln")
    source = random_source("128s")
    source = dataclasses.replace(source, config=cfg, params=random_params(cfg))
    with pytest.raises(ExportError, match="only BatchNorm models with attention biases"):
        onnx_bytes(source, ExportSettings())


def test_parse_batch():
    assert parse_batch("dynamic") is None and parse_batch(" Dynamic ") is None and parse_batch("8") == 8
    for bad in ("0", "-1", "1.5", ""):
        with pytest.raises(ValueError, match="positive integer"):
            parse_batch(bad)
