"""`levit eval`: exact top-1/top-5 on datasets whose answer is known, per-image top-5 against the reference,
the flat+CSV layout, ReaL, per-class and results files, unreadable images, and bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from levit_np.evaluation.datasets import DatasetError, Dataset, Sample, limited, open_dataset
from levit_np.images.labels import wnid
from levit_cli.main import cli

from conftest import invoke_cli
from eval_fixtures import EXPECTED_TOP1, EXPECTED_TOP5, RANKS, image_folder, shared_known_dataset, reference_top5

PROB_ATOL = 1e-5  # probabilities of two float32 forward passes


def run(*args: str):
    return invoke_cli("eval", *args)


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    return shared_known_dataset(tmp_path_factory)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_image_folder_in_worker_processes_exact_accuracy_and_top5(known, tmp_path):
    data = image_folder(known, tmp_path / "val")
    predictions, results, per_class = tmp_path / "p.jsonl", tmp_path / "r.csv", tmp_path / "classes.csv"
    result = run(str(data), "--weights", str(known.weights), "--json", "--workers", "2", "--batch-size", "3",
                 "--predictions", str(predictions), "--results", str(results), "--per-class", str(per_class))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    print(f"top1 {summary['top1']} (expected {EXPECTED_TOP1}), top5 {summary['top5']} (expected {EXPECTED_TOP5})")
    assert summary["top1"] == pytest.approx(EXPECTED_TOP1, abs=1e-3)
    assert summary["top5"] == pytest.approx(EXPECTED_TOP5, abs=1e-3)
    assert summary["top1_err"] == pytest.approx(100 - EXPECTED_TOP1, abs=1e-3)
    assert (summary["images"], summary["errors"], summary["img_size"], summary["crop_pct"]) == (len(RANKS), 0, 224, 0.875)
    assert summary["param_count"] == 7.78 and summary["interpolation"] == "bicubic"

    expected = reference_top5(known)
    probs_by_name = {path.name: row for path, row in zip(known.pool, known.probabilities)}
    lines = read_jsonl(predictions)
    assert sorted(Path(line["image"]).name for line in lines) == sorted(expected)
    for line in lines:
        name = Path(line["image"]).name
        assert line["top5"] == expected[name], name
        reference = probs_by_name[name][expected[name]]
        print(f"{name}: max |prob - reference| {np.abs(np.array(line['probs']) - reference).max():.1e}")
        np.testing.assert_allclose(line["probs"], reference, rtol=0, atol=PROB_ATOL)

    with open(results, newline="") as f:
        row = next(csv.DictReader(f))
    assert float(row["top1"]) == pytest.approx(EXPECTED_TOP1, abs=1e-3) and row["model"] == "levit_128s"
    with open(per_class, newline="") as f:
        classes = {int(r["class"]): r for r in csv.DictReader(f)}
    assert set(classes) == set(known.labels)
    for i, label in enumerate(known.labels):  # every class here holds exactly one photo
        assert float(classes[label]["top1"]) == (100.0 if RANKS[i] == 1 else 0.0)
        assert float(classes[label]["top5"]) == (100.0 if RANKS[i] <= 5 else 0.0)
        if RANKS[i] != 1:
            assert int(classes[label]["most_confused_with"]) == expected[known.pool[i].name][0]


def test_flat_folder_with_labels_csv_and_an_unreadable_image(known, tmp_path):
    data = tmp_path / "flat"
    data.mkdir()
    rows = []
    for i, (path, label) in enumerate(zip(known.pool, known.labels)):
        shutil.copy(path, data / path.name)
        rows.append(f"{path.name},{wnid(label) if i % 2 else label}")  # wnids and class indices both work
    (data / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rows.append("broken.jpg,0")
    (tmp_path / "labels.csv").write_text("image,label\n" + "\n".join(rows) + "\n")
    result = run(str(data), "--weights", str(known.weights), "--labels", str(tmp_path / "labels.csv"), "--json",
                 "--workers", "0")
    assert result.exit_code == 1, result.output  # an unreadable image: counted, listed, exit code 1
    summary = json.loads(result.stdout)
    assert summary["top1"] == pytest.approx(EXPECTED_TOP1, abs=1e-3)  # the broken image is not in the denominator
    assert summary["top5"] == pytest.approx(EXPECTED_TOP5, abs=1e-3)
    assert summary["images"] == len(RANKS) and summary["errors"] == 1
    assert [e["image"] for e in summary["unreadable"]] == ["broken.jpg"]
    assert "broken.jpg" in result.stderr


def test_real_labels(known, tmp_path):
    """ReaL: a hit when any top-k class is in the image's set; empty sets are skipped."""
    data = tmp_path / "val"
    data.mkdir()
    order = reference_top5(known)
    top = [order[p.name] for p in known.pool[:4]]
    rows = []
    for i, path in enumerate(known.pool[:4]):
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        shutil.copy(path, data / name)
        rows.append(f"{name},0")
    (tmp_path / "labels.csv").write_text("image,label\n" + "\n".join(rows) + "\n")
    never = next(c for c in range(1000) if all(c not in t for t in top))
    real = [[top[0][0], never], [top[1][2]], [], [never], [0]]  # hit@1, hit@5 only, skipped, miss; one extra entry
    (tmp_path / "real.json").write_text(json.dumps(real))
    result = run(str(data), "--weights", str(known.weights), "--labels", str(tmp_path / "labels.csv"),
                 "--real-labels", str(tmp_path / "real.json"), "--json", "--workers", "0")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["real_images"] == 3
    assert summary["real_top1"] == pytest.approx(100 / 3, abs=1e-3)
    assert summary["real_top5"] == pytest.approx(200 / 3, abs=1e-3)


def test_limit_is_an_even_fixed_choice():
    samples = tuple(Sample(f"{i}.jpg", f"{i}.jpg", i) for i in range(10))
    picked = limited(Dataset("x", samples, "labels-csv"), 4).samples
    assert [s.label for s in picked] == [0, 2, 5, 7]
    assert limited(Dataset("x", samples, "labels-csv"), 20).samples == samples


def one_line_error(result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_bad_input_is_one_line(known, tmp_path):
    weights = ["--weights", str(known.weights)]
    assert "no such folder" in one_line_error(run(str(tmp_path / "missing"), *weights))
    (tmp_path / "empty").mkdir()
    assert "no class folders and no images" in one_line_error(run(str(tmp_path / "empty"), *weights))

    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(known.pool[0], flat / "a.jpg")
    assert "--labels" in one_line_error(run(str(flat), *weights))
    (tmp_path / "missing.csv").write_text("image,label\na.jpg,0\nb.jpg,1\nc.jpg,2\n")
    message = one_line_error(run(str(flat), *weights, "--labels", str(tmp_path / "missing.csv")))
    assert "2 images are not found" in message and "b.jpg" in message
    (tmp_path / "unknown.csv").write_text("image,label\na.jpg,n99999999\n")
    assert "n99999999" in one_line_error(run(str(flat), *weights, "--labels", str(tmp_path / "unknown.csv")))
    (tmp_path / "noheader.csv").write_text("a.jpg,0\n")
    assert "header" in one_line_error(run(str(flat), *weights, "--labels", str(tmp_path / "noheader.csv")))

    unknown = tmp_path / "unknown_wnids"
    (unknown / "n99999999").mkdir(parents=True)
    shutil.copy(known.pool[0], unknown / "n99999999" / "a.jpg")
    assert "not ImageNet-1k wnids" in one_line_error(run(str(unknown), *weights))

    named = tmp_path / "named"
    for folder in ("dogs", "cats"):
        (named / folder).mkdir(parents=True)
        shutil.copy(known.pool[0], named / folder / "a.jpg")
    assert "--class-map" in one_line_error(run(str(named), *weights))
    (tmp_path / "map.txt").write_text("n01440764\n")
    assert "1 wnids for 2 class folders" in one_line_error(run(str(named), *weights, "--class-map",
                                                               str(tmp_path / "map.txt")))
    assert "--resume needs --predictions" in one_line_error(run(str(named), *weights, "--resume"))
    assert "must end in .json or .csv" in one_line_error(run(str(named), *weights, "--results",
                                                             str(tmp_path / "r.txt")))


def test_class_map_gives_folders_their_classes(known, tmp_path):
    named = tmp_path / "named"
    for folder, path in zip(("a_first", "b_second"), known.pool[:2]):
        (named / folder).mkdir(parents=True)
        shutil.copy(path, named / folder / path.name)
    (tmp_path / "map.txt").write_text(f"{wnid(known.labels[0])}\n{wnid(7)}\n")
    dataset = open_dataset(named, class_map=tmp_path / "map.txt")
    assert [(s.image, s.label) for s in dataset.samples] == [
        (f"a_first/{known.pool[0].name}", known.labels[0]), (f"b_second/{known.pool[1].name}", 7)]
    with pytest.raises(DatasetError, match="not ImageNet-1k wnids"):
        (tmp_path / "bad_map.txt").write_text("n01440764\nnot_a_wnid\n")
        open_dataset(named, class_map=tmp_path / "bad_map.txt")


def test_predict_on_many_images_uses_the_worker_pipeline_in_input_order(known, tmp_path):
    """Four batches or more: `levit predict` classifies in worker processes; same results, same order."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    images = [str(p) for p in known.pool[:4]] + [str(broken)] + [str(p) for p in known.pool[4:]]
    outputs = {}
    for workers in ("default", "0"):
        extra = [] if workers == "default" else ["--workers", workers]
        result = CliRunner().invoke(cli, ["predict", "--weights", str(known.weights), "--json", "-b", "2", "-k", "5",
                                          *extra, *images])
        assert result.exit_code == 1, result.output  # the broken image
        outputs[workers] = json.loads(result.stdout)["images"]
    parallel, serial = outputs["default"], outputs["0"]
    assert [e["image"] for e in parallel] == images == [e["image"] for e in serial]
    assert "error" in parallel[4] and "error" in serial[4]
    for a, b in zip(parallel, serial):
        if "error" in a:
            continue
        assert [p["index"] for p in a["predictions"]] == [p["index"] for p in b["predictions"]]
        np.testing.assert_allclose([p["probability"] for p in a["predictions"]],
                                   [p["probability"] for p in b["predictions"]], rtol=0, atol=PROB_ATOL)


def test_ordered_restores_input_order():
    from levit_np.evaluation.pipeline import ordered

    assert list(ordered([(2, "c"), (0, "a"), (3, "d"), (1, "b")])) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(("count", "batch_size", "workers"), [(1000, 32, 2), (500, 32, 2), (40, 32, 2), (7, 32, 3),
                                                              (1000, 32, 1), (65, 8, 4), (3, 1, 2), (0, 32, 2)])
def test_batch_bounds_cover_every_item_once_and_split_the_tail(count, batch_size, workers):
    from levit_np.evaluation.pipeline import TAIL_SPLIT, batch_bounds

    bounds = batch_bounds(count, batch_size, workers)
    covered = [i for start, stop in bounds for i in range(start, stop)]
    assert covered == list(range(count))
    assert all(0 < stop - start <= batch_size for start, stop in bounds)
    sizes = [stop - start for start, stop in bounds]
    if workers == 1:  # one worker: nothing to balance
        assert sizes[:-1] == [batch_size] * (len(sizes) - 1)
        return
    full = max(0, count - workers * batch_size) // batch_size  # then the rest, in pieces of batch_size / 4
    assert sizes[:full] == [batch_size] * full
    tail = sizes[full:]
    assert sum(tail) < (workers + 1) * batch_size and max(tail, default=0) <= max(1, batch_size // TAIL_SPLIT)
    assert sum(tail) >= min(count, workers * batch_size)
