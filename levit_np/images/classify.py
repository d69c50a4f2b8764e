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
from levit_np.images.labels import ClassNames, class_names_for, softmax, top_k
from levit_np.images.preprocessing import DEFAULT_CROP_PCT, DEFAULT_SIZE, preprocess_hw

DEFAULT_BATCH_SIZE = 16
DEFAULT_TOP_K = 5
PROBABILITY_DIGITS = 6  # significant digits of a probability in JSON: float32 logits carry about 7


@dataclass(frozen=True)
class Prediction:
    index: int  # class index, 0..999 for ImageNet-1k
    wnid: Optional[str]  # WordNet id, e.g. n01440764 (None for classes from a names file)
    label: str  # readable name, e.g. tench
    probability: float  # softmax of the logits

    def to_dict(self, digits: Optional[int] = None) -> dict:
        """`{"label", "wnid", "index", "probability"}`, the probability rounded to `digits` significant digits."""
        probability = self.probability if digits is None else round_probability(self.probability, digits)
        return {"label": self.label, "wnid": self.wnid, "index": self.index, "probability": probability}


def round_probability(p: float, digits: int = PROBABILITY_DIGITS) -> float:
    """`p` to `digits` significant digits (0.412453293800354 -> 0.412453, 1.234567e-09 -> 1.23457e-09)."""
    return float(f"{p:.{digits}g}")


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
            {"index": p.index, "wnid": p.wnid, "label": p.label,
             "probability": round_probability(p.probability)} for p in self.predictions]}


def classify(model, images: Sequence[str | os.PathLike], *, k: int = DEFAULT_TOP_K,
             batch_size: int = DEFAULT_BATCH_SIZE, crop_pct: float = DEFAULT_CROP_PCT,
             size: tuple[int, int] = (DEFAULT_SIZE, DEFAULT_SIZE), class_names: Optional[ClassNames] = None,
             on_progress: Optional[Callable[[int, int], None]] = None,
             raise_unexpected: bool = False) -> Iterator[ImageResult]:
    """Yield one ImageResult per image, in order, running `model` on batches of up to `batch_size` images.

    Images are `size` (H, W) after the evaluation transform with `crop_pct`; labels come from `class_names`
    (default: `model_class_names(model)`). Files that fail to decode (ImageError: missing, empty, truncated,
    not an image, too large) become error results. Any other exception while preparing one image also becomes
    an error result, naming its type, unless `raise_unexpected` (for debugging: the CLI's --verbose).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    names = class_names or model_class_names(model)
    done = 0
    for start in range(0, len(images), batch_size):
        chunk = [os.fspath(path) for path in images[start:start + batch_size]]
        results = classify_batch(model, chunk, k=k, crop_pct=crop_pct, size=size, names=names,
                                 raise_unexpected=raise_unexpected)
        done += len(chunk)
        if on_progress is not None:
            on_progress(done, len(images))
        yield from results


def classify_batch(model, paths: list[str], *, k: int = DEFAULT_TOP_K, crop_pct: float = DEFAULT_CROP_PCT,
                   size: tuple[int, int] = (DEFAULT_SIZE, DEFAULT_SIZE), names: Optional[ClassNames] = None,
                   raise_unexpected: bool = False) -> list[ImageResult]:
    """One forward pass over the readable files among `paths`: one ImageResult per path, in order."""
    arrays, errors = prepare_arrays(paths, crop_pct, raise_unexpected, size)
    positions = sorted(arrays)
    ranked = (dict(zip(positions, top_predictions(model, np.stack([arrays[i] for i in positions]), k, names)))
              if positions else {})
    return [ImageResult(path, predictions=ranked[i]) if i in ranked else ImageResult(path, error=errors[i])
            for i, path in enumerate(paths)]


def prepare_arrays(paths: list[str], crop_pct: float, raise_unexpected: bool,
                   size: tuple[int, int] = (DEFAULT_SIZE, DEFAULT_SIZE)) -> tuple[dict, dict]:
    """Preprocess each path: ({position: (3, H, W) array}, {position: error message})."""
    arrays, errors = {}, {}
    for i, path in enumerate(paths):
        try:
            arrays[i] = preprocess_hw(path, *size, crop_pct=crop_pct)
        except LevitError as e:
            errors[i] = " ".join(str(e).split())
        except Exception as e:  # a bug or an exotic file: report it for this image, keep classifying the rest
            if raise_unexpected:
                raise
            errors[i] = f"{path}: {type(e).__name__}: {' '.join(str(e).split())}"
    return arrays, errors


def model_class_names(model) -> ClassNames:
    """The model's own names (`model.class_names`, e.g. from `--class-names`), else those its head size implies."""
    names = getattr(model, "class_names", None)
    return names if names is not None else class_names_for(model.config.num_classes)


def top_predictions(model, x: np.ndarray, k: int, names: Optional[ClassNames] = None) -> list[list[Prediction]]:
    """(B, 3, H, W) through the model, softmax, top k of each row. -> B lists of k Predictions, largest first"""
    names = names or model_class_names(model)
    probabilities = softmax(model(x))  # (B, num_classes)
    return [[Prediction(index, names.wnid(index), names.label(index), probability) for index, probability in row]
            for row in top_k(probabilities, k)]


def to_batch(images, *, crop_pct: float = DEFAULT_CROP_PCT,
             size: tuple[int, int] = (DEFAULT_SIZE, DEFAULT_SIZE)) -> tuple[np.ndarray, bool]:
    """Images in any form `LevitModel.classify` takes -> ((B, 3, H, W) float32, whether it was one image).

    One image: a path, a PIL image, a uint8 array of pixels ((H, W) or (H, W, C), as `np.asarray(pil_image)`),
    or a float array (3, H, W) already preprocessed. Many: a list or tuple of those, or a float (B, 3, H, W).
    Paths, PIL images and pixel arrays go through the evaluation transform (`crop_pct`, `size`).
    """
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return _preprocessed(images), False
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("no images given")
        return np.stack([_one_image(image, crop_pct, size) for image in images]), False
    return _one_image(images, crop_pct, size)[None], True


def _one_image(image, crop_pct: float, size: tuple[int, int]) -> np.ndarray:
    """One image in any accepted form -> (3, H, W) float32"""
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint8 and image.ndim in (2, 3):
            from PIL import Image

            image = Image.fromarray(image)
        elif image.ndim == 3 and image.shape[0] == 3 and np.issubdtype(image.dtype, np.floating):
            return _preprocessed(image[None])[0]
        else:
            raise ValueError(f"cannot classify an array of shape {image.shape} and dtype {image.dtype}: give uint8 "
                             "pixels (H, W) or (H, W, C), or a preprocessed float (3, H, W) / (B, 3, H, W)")
    return preprocess_hw(image, *size, crop_pct=crop_pct)


def _preprocessed(x: np.ndarray) -> np.ndarray:
    """A preprocessed float batch, checked. (B, 3, H, W) -> (B, 3, H, W) float32"""
    if x.ndim != 4 or x.shape[1] != 3 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected preprocessed float images (B, 3, H, W), got {x.shape} {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)
