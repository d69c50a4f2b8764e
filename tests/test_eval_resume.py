"""`levit eval --predictions --resume`: a run SIGKILLed mid-way, resumed, gives an uninterrupted run's numbers,
with every image in the predictions file exactly once; a torn last line is dropped, never read; the killed
run leaves no worker processes behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from levit_np.evaluation.results import PredictionLog, ResumeError
from levit_cli.main import cli

from eval_fixtures import EXPECTED_TOP1, EXPECTED_TOP5, RANKS, image_folder, shared_known_dataset

KILL_TIMEOUT = 120.0  # seconds to wait for the first finished batch


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    return shared_known_dataset(tmp_path_factory)


def images_in(path: Path) -> list[str]:
    return [json.loads(line)["image"] for line in path.read_text().splitlines()]


def evaluate_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["eval", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sigkill_then_resume_equals_an_uninterrupted_run(known, tmp_path):
    """Also: the killed run's worker processes notice their parent is gone and exit."""
    psutil = pytest.importorskip("psutil")
    data = image_folder(known, tmp_path / "val")
    common = [str(data), "--weights", str(known.weights), "--batch-size", "1", "--backend", "numpy"]
    whole = evaluate_json(*common, "--workers", "0", "--predictions", str(tmp_path / "whole.jsonl"))

    predictions = tmp_path / "killed.jsonl"
    command = [sys.executable, "-c", "from levit_cli.main import main; main()", "eval", *common, "--workers", "2",
               "--predictions", str(predictions)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.monotonic() + KILL_TIMEOUT, []
    while time.monotonic() < deadline and process.poll() is None:
        workers = psutil.Process(process.pid).children(recursive=True) or workers
        if predictions.exists() and predictions.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    assert workers and not alive, f"{len(alive)} of {len(workers)} worker processes outlived their killed parent"
    done = images_in(predictions)
    print(f"killed after {len(done)} of {len(RANKS)} images")
    assert 2 <= len(done) < len(RANKS)
    with open(predictions, "ab") as f:  # what a kill in the middle of a write leaves behind
        f.write(b'{"image":"' + done[0].encode() + b'","label":3,"top5":[1,2')

    resumed = evaluate_json(*common, "--workers", "0", "--predictions", str(predictions), "--resume")
    assert resumed["resumed"] == len(done)
    for key in ("top1", "top5", "images", "errors"):
        assert resumed[key] == whole[key], key
    assert resumed["top1"] == pytest.approx(EXPECTED_TOP1, abs=1e-3)
    assert resumed["top5"] == pytest.approx(EXPECTED_TOP5, abs=1e-3)
    lines = images_in(predictions)  # parses every line: the torn one is gone
    assert sorted(lines) == sorted(images_in(tmp_path / "whole.jsonl")) and len(set(lines)) == len(RANKS)


def test_existing_predictions_need_resume_and_foreign_files_are_refused(tmp_path):
    log = tmp_path / "p.jsonl"
    log.write_text('{"image": "a.jpg", "label": 1, "top5": [1, 2, 3, 4, 5], "probs": [0.1, 0.1, 0.1, 0.1, 0.1]}\n')
    with pytest.raises(ResumeError, match="--resume"):
        PredictionLog.open(log, resume=False)
    opened = PredictionLog.open(log, resume=True)
    opened.append([{"image": "a.jpg", "label": 1, "top5": [9, 9, 9, 9, 9], "probs": [0.2] * 5}])  # already there
    opened.close()
    assert log.read_text().count("\n") == 1
    (tmp_path / "other.jsonl").write_text('{"something": "else"}\n')
    with pytest.raises(ResumeError, match="not a prediction record"):
        PredictionLog.open(tmp_path / "other.jsonl", resume=True)
    (tmp_path / "garbage.jsonl").write_text("hello\nworld\n")
    with pytest.raises(ResumeError, match="line 1 is not JSON"):
        PredictionLog.open(tmp_path / "garbage.jsonl", resume=True)
