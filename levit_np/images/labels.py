"""Class labels: ImageNet-1k (packaged ``imagenet_class_index.json``, beside this module) or the user's own
(``ClassNames``, e.g. from a ``--class-names`` file for a fine-tuned LeViT), softmax and top-k.

The json maps ``"0".."999"`` to ``[wnid, name]`` (the common Keras-format file); names use underscores, which
``label`` turns into spaces. The file is read once, on first use.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from levit_np.errors import LevitError, one_line

NUM_CLASSES = 1000
_DATA_FILE = "imagenet_class_index.json"


def imagenet_classes() -> list[tuple[str, str]]:
    """All 1000 classes in index order as (wnid, readable name), e.g. ``('n01440764', 'tench')``."""
    return list(_classes())


@functools.cache
def _classes() -> tuple[tuple[str, str], ...]:
    """The parsed json, read on first use and cached (a tuple, so callers cannot change the cache)."""
    with open(os.path.join(os.path.dirname(__file__), _DATA_FILE), encoding="utf-8") as f:  # packaged beside
        text = f.read()
    raw = json.loads(text)
    if sorted(raw, key=int) != [str(i) for i in range(NUM_CLASSES)]:
        raise RuntimeError(f"levit_np/images/{_DATA_FILE} does not hold classes 0..{NUM_CLASSES - 1}")
    return tuple((raw[str(i)][0], raw[str(i)][1].replace("_", " ")) for i in range(NUM_CLASSES))


def _check_index(index: int) -> int:
    i = int(index)
    if i != index or not 0 <= i < NUM_CLASSES:
        raise IndexError(f"class index must be an integer in 0..{NUM_CLASSES - 1}, got {index!r}")
    return i


def label(index: int) -> str:
    """Readable name of class ``index``, underscores replaced by spaces (``label(2) == 'great white shark'``)."""
    return _classes()[_check_index(index)][1]


def wnid(index: int) -> str:
    """WordNet id of class ``index`` (``wnid(0) == 'n01440764'``)."""
    return _classes()[_check_index(index)][0]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:  # (..., K) -> (..., K) float32
    """Numerically stable softmax: subtract the max, exponentiate and normalise in float64, return float32."""
    from levit_np.kernels.reference import softmax as softmax_kernel

    return softmax_kernel(np.asarray(logits, dtype=np.float64), axis=axis).astype(np.float32)


def top_k(probabilities: np.ndarray, k: int = 5) -> list[list[tuple[int, float]]]:  # (B, K) or (K,) -> B lists
    """The ``k`` largest entries of each row as ``(index, value)``, largest first; equal values by lower index.

    A 1-D input is treated as one row, so the result always has one list per row. ``k`` larger than the number
    of classes returns every class.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2:
        raise ValueError(f"expected shape (K,) or (B, K), got {p.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(int(k), p.shape[1])
    # A stable sort of the negated values keeps the original (ascending index) order among equal values.
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return [[(int(i), float(row[i])) for i in idx] for row, idx in zip(p, order)]


@dataclass(frozen=True)
class ClassNames:
    """The label (and WordNet id, when known) of each class index of a model's head."""

    labels: tuple[str, ...]
    wnids: tuple[Optional[str], ...]
    source: str  # "imagenet-1k", a file name, or "class indices"

    def __len__(self) -> int:
        return len(self.labels)

    def label(self, index: int) -> str:
        return self.labels[index]

    def wnid(self, index: int) -> Optional[str]:
        return self.wnids[index]


def imagenet_names() -> ClassNames:
    """The 1000 ImageNet-1k classes (labels and WordNet ids)."""
    classes = _classes()
    return ClassNames(tuple(name for _, name in classes), tuple(w for w, _ in classes), "imagenet-1k")


def read_class_names(path: str | os.PathLike, num_classes: Optional[int] = None) -> ClassNames:
    """A text file with one class name per line (UTF-8; surrounding spaces and a final empty line dropped).

    With `num_classes`, the file must hold exactly that many names (the model's head size).
    """
    try:
        text = open(path, encoding="utf-8-sig").read()
    except (OSError, UnicodeDecodeError) as e:
        raise LevitError(f"cannot read class names from {path}: {one_line(e)}") from None
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise LevitError(f"{path} holds no class names (expected one name per line)")
    if "" in names:
        raise LevitError(f"{path}: line {names.index('') + 1} is empty (expected one class name per line)")
    if num_classes is not None and len(names) != num_classes:
        raise LevitError(f"{path} has {len(names)} class names, but the model has {num_classes} classes")
    return ClassNames(tuple(names), (None,) * len(names), os.path.basename(os.fspath(path)))


def class_names_for(num_classes: int, path: str | os.PathLike | None = None) -> ClassNames:
    """The names of a head with `num_classes` outputs: from `path` when given, ImageNet's for 1000 classes,
    else "class 0", "class 1", ... (a fine-tuned head without a names file)."""
    if path is not None:
        return read_class_names(path, num_classes)
    if num_classes == NUM_CLASSES:
        return imagenet_names()
    return ClassNames(tuple(f"class {i}" for i in range(num_classes)), (None,) * num_classes, "class indices")
