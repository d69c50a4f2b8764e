"""Classify image files in batches: paths in, top-k ImageNet classes out, one result per path in input order.

A file that cannot be decoded becomes a result with an `error` and does not stop the others. No click or rich
here: `levit predict` renders the results, and a caller may pass `on_progress(done, total)` for a progress bar.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from levit_np.errors import LevitError
from levit_np.images.labels import label, softmax, top_k, wnid
from levit_np.images.preprocessing import DEFAULT_CROP_PCT, DEFAULT_SIZE, preprocess

DEFAULT_BATCH_SIZE = 16
DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class Prediction:
    index: int  # ImageNet-1k class index, 0..999
    wnid: str  # WordNet id, e.g. n01440764
    label: str  # readable name, e.g. tench
    probability: float  # softmax of the logits


@dataclass(frozen=True)
class ImageResult:
    image: str  # the path as the caller gave it
    predictions: Optional[list[Prediction]] = None  # largest probability first; None when `error` is set
    error: Optional[str] = None  # one line

    def to_json(self) -> dict:
        """`{"image", "predictions": [{"index", "wnid", "label", "probability"}, ...]}` or `{"image", "error"}`."""
        if self.error is not None:
            return {"image": self.image, "error": self.error}
        return {"image": self.image, "predictions": [
            {"index": p.index, "wnid": p.wnid, "label": p.label, "probability": p.probability}
            for p in self.predictions]}


def classify(model, images: Sequence[str | os.PathLike], *, k: int = DEFAULT_TOP_K,
             batch_size: int = DEFAULT_BATCH_SIZE, crop_pct: float = DEFAULT_CROP_PCT,
             on_progress: Optional[Callable[[int, int], None]] = None,
             raise_unexpected: bool = False) -> Iterator[ImageResult]:
    """Yield one ImageResult per image, in order, running `model` on batches of up to `batch_size` images.

    Files that fail to decode (ImageError: missing, empty, truncated, not an image, too large) become error
    results. Any other exception while preparing one image also becomes an error result, naming its type,
    unless `raise_unexpected` (for debugging: the CLI's --verbose).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    done = 0
    for start in range(0, len(images), batch_size):
        chunk = [os.fspath(path) for path in images[start:start + batch_size]]
        results = classify_batch(model, chunk, k=k, crop_pct=crop_pct, raise_unexpected=raise_unexpected)
        done += len(chunk)
        if on_progress is not None:
            on_progress(done, len(images))
        yield from results


def classify_batch(model, paths: list[str], *, k: int = DEFAULT_TOP_K, crop_pct: float = DEFAULT_CROP_PCT,
                   raise_unexpected: bool = False) -> list[ImageResult]:
    """One forward pass over the readable files among `paths`: one ImageResult per path, in order."""
    arrays, errors = prepare_arrays(paths, crop_pct, raise_unexpected)
    positions = sorted(arrays)
    ranked = dict(zip(positions, predict_arrays(model, [arrays[i] for i in positions], k))) if positions else {}
    return [ImageResult(path, predictions=ranked[i]) if i in ranked else ImageResult(path, error=errors[i])
            for i, path in enumerate(paths)]


def prepare_arrays(paths: list[str], crop_pct: float, raise_unexpected: bool,
                   size: int = DEFAULT_SIZE) -> tuple[dict, dict]:
    """Preprocess each path: ({position: (3, size, size) array}, {position: error message})."""
    arrays, errors = {}, {}
    for i, path in enumerate(paths):
        try:
            arrays[i] = preprocess(path, crop_pct=crop_pct, size=size)
        except LevitError as e:
            errors[i] = " ".join(str(e).split())
        except Exception as e:  # a bug or an exotic file: report it for this image, keep classifying the rest
            if raise_unexpected:
                raise
            errors[i] = f"{path}: {type(e).__name__}: {' '.join(str(e).split())}"
    return arrays, errors


def predict_arrays(model, arrays: list[np.ndarray], k: int) -> list[list[Prediction]]:
    """(B, 3, H, W) through the model, softmax, top k of each row. B arrays -> B lists of k Predictions"""
    probabilities = softmax(model(np.stack(arrays)))  # (B, 1000)
    return [[Prediction(index, wnid(index), label(index), probability) for index, probability in row]
            for row in top_k(probabilities, k)]
