"""Datasets whose accuracy is known in advance, for the `levit eval` tests.

With random weights accuracy is near zero, so each image is labelled from the reference model's own ranking
(the NumPy reference, which tests/test_against_torch.py shows equals PyTorch's): its rank-1 class, one of its
ranks 2..5, or a low rank. Top-1 and top-5 are then known exactly.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import levit_np
from levit_np.images.labels import softmax, wnid
from levit_np.model.config import get_config
from levit_np.model.params import random_params
from levit_np.weights.hdf5_file import write_weights

VARIANT, SEED = "levit_128s", 3
LOW_RANK = 500  # a class far outside the top 5
RANKS = (1, 1, 1, 2, 3, 5, LOW_RANK, LOW_RANK)  # the reference rank of each image's label (1-based)
TIE_GAP = 1e-5  # probabilities of two float32 forward passes agree to this; ranks 1..6 must be further apart
EXPECTED_TOP1 = 100.0 * 3 / 8
EXPECTED_TOP5 = 100.0 * 6 / 8


@dataclass
class KnownDataset:
    weights: Path  # random LeViT-128S as a levit-np .h5 file
    pool: list[Path]  # the photos, one per rank in RANKS
    probabilities: np.ndarray  # (N, 1000) reference probabilities
    labels: list[int]  # class index of each photo


def make_photo(path: Path, seed: int) -> None:
    """A 500x375 JPEG: smooth random colour fields plus noise, different for each seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(6, 8, 3)).astype(np.uint8)
    image = Image.fromarray(coarse).resize((500, 375), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 12, size=(375, 500, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


def known_dataset(folder: Path) -> KnownDataset:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = get_config(VARIANT)
    params = random_params(cfg, SEED)
    weights = folder / "random.h5"
    write_weights(weights, cfg, params)
    pool = []
    for i in range(len(RANKS)):
        path = folder / f"photo_{i:02d}.jpg"
        make_photo(path, seed=100 + i)
        pool.append(path)
    reference = levit_np.LevitModel(cfg, params, "numpy")
    probabilities = softmax(reference(np.stack([levit_np.preprocess(p) for p in pool])))
    order = np.argsort(-probabilities, axis=1, kind="stable")
    labels = [int(order[i, rank - 1]) for i, rank in enumerate(RANKS)]
    # The ranks must be clear-cut, so a float32 rounding difference between backends cannot reorder them.
    sorted_probs = -np.sort(-probabilities, axis=1)
    gaps = sorted_probs[:, :5] - sorted_probs[:, 1:6]
    assert gaps.min() > 2 * TIE_GAP, f"near-tie in the reference ranking (gap {gaps.min():.1e}); change SEED"
    return KnownDataset(weights, pool, probabilities, labels)


_BUILT: dict[str, KnownDataset] = {}


def shared_known_dataset(tmp_path_factory) -> KnownDataset:
    """`known_dataset` built once per test session, whichever eval test module asks first."""
    if "known" not in _BUILT:
        _BUILT["known"] = known_dataset(tmp_path_factory.mktemp("known"))
    return _BUILT["known"]


def image_folder(known: KnownDataset, root: Path) -> Path:
    """The photos as an ImageFolder: each in the folder of its label's wnid."""
    for path, index in zip(known.pool, known.labels):
        target = root / wnid(index)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)
    return root


def reference_top5(known: KnownDataset) -> dict[str, list[int]]:
    """photo file name -> the reference's five most likely classes."""
    order = np.argsort(-known.probabilities, axis=1, kind="stable")[:, :5]
    return {path.name: [int(c) for c in row] for path, row in zip(known.pool, order)}
