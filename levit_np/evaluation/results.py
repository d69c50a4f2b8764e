"""Files an evaluation writes: the predictions log (JSONL, appended as batches finish, resumable), the results
(JSON or CSV with timm's field names) and the per-class table (CSV).

The log is the one file written in place, on purpose: each batch's lines go out in one write and are flushed,
so a run killed at any moment (even SIGKILL) leaves every finished batch on disk and at most one torn last
line. `PredictionLog.open(..., resume=True)` reads what is there, cuts a torn tail off, and appends after it;
records are keyed by image, so an image is never counted twice. The results and per-class files are written
whole, through a temporary file renamed into place.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from levit_np.errors import LevitError, OutputError
from levit_np.weights.fileio import atomic_output, check_output_path

RESULT_FIELDS = ("model", "top1", "top1_err", "top5", "top5_err", "param_count", "img_size", "crop_pct",
                 "interpolation", "images", "errors", "images_per_second")
CLASS_FIELDS = ("class", "wnid", "name", "images", "top1", "top5", "most_confused_with", "most_confused_wnid",
                "most_confused_count")


class ResumeError(LevitError):
    """The predictions file cannot be continued: not a predictions log, or it exists without --resume."""


class PredictionLog:
    """Append-only JSONL of prediction records; `records` holds what was already there (image -> record)."""

    def __init__(self, path: Path, handle, records: dict[str, dict]):
        self.path, self._handle, self.records = path, handle, records

    @classmethod
    def open(cls, path: str | os.PathLike, resume: bool) -> "PredictionLog":
        target = check_output_path(path, (".jsonl",))
        records: dict[str, dict] = {}
        if target.exists():
            if not resume:
                raise ResumeError(f"{target} exists: pass --resume to continue it, or remove it to start over")
            records = _read_log(target)
        try:
            handle = open(target, "ab")
        except OSError as e:
            raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
        return cls(target, handle, records)

    def append(self, records: list[dict]) -> None:
        """Write one batch's records in a single write and flush it to the operating system."""
        fresh = [r for r in records if r["image"] not in self.records]
        if not fresh:
            return
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in fresh).encode("utf-8")
        self._handle.write(data)
        self._handle.flush()
        for r in fresh:
            self.records[r["image"]] = r

    def close(self) -> None:
        self._handle.close()


def _read_log(path: Path) -> dict[str, dict]:
    """Records of an existing log; a torn last line (no newline at the end) is cut off the file."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):  # a write was cut short: drop the partial line so appends start on a fresh line
        with open(path, "r+b") as f:
            f.truncate(end)
    records: dict[str, dict] = {}
    for number, line in enumerate(data[:end].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise ResumeError(f"{path}: line {number} is not JSON; is this a predictions file?") from None
        if not isinstance(record, dict) or "image" not in record or "label" not in record or not (
                "top5" in record or "error" in record):
            raise ResumeError(f"{path}: line {number} is not a prediction record (image, label, top5)")
        records.setdefault(record["image"], record)
    return records


def check_results_path(path: str | os.PathLike) -> Path:
    return check_output_path(path, (".json", ".csv"))


def write_results(path: str | os.PathLike, summary: dict) -> None:
    """The summary as JSON (every field) or CSV (timm's fields first, one header line and one row)."""
    target = check_results_path(path)
    with atomic_output(target) as tmp:
        if target.suffix.lower() == ".json":
            tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        else:
            fields = [f for f in RESULT_FIELDS if f in summary]
            fields += [f for f in summary if f not in fields and not isinstance(summary[f], (list, dict))]
            _write_csv(tmp, fields, [summary])


def write_per_class(path: str | os.PathLike, rows: list[dict]) -> None:
    with atomic_output(check_output_path(path, (".csv",))) as tmp:
        _write_csv(tmp, list(CLASS_FIELDS), rows)


def _write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
