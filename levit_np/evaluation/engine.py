"""The work of one evaluation worker: load the model once, then turn batches of image files into records.

A record is what the predictions log holds for one image:
    {"image": name, "label": class index, "top5": [5 class indices], "probs": [5 probabilities]}
or, for a file that cannot be read, {"image": name, "label": class index, "error": one line}.

`ModelSpec` names a model so that any process (a local worker, a Dask worker on another machine) can load it:
a weights file, or a variant with random weights (tests, benchmarks). `pin_threads` fixes the thread pools of
the process it runs in; it must run before NumPy or Numba are imported to take full effect.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional

from levit_np.perf import timing

TOP = 5  # classes kept per image in a record


@dataclass(frozen=True)
class ModelSpec:
    """A model any process can load: `weights` (a file every worker can read) or `variant` + `seed` (random)."""

    weights: Optional[str] = None
    variant: Optional[str] = None
    seed: int = 0
    backend: str = "numba"

    def load(self):
        import levit_np

        if self.weights is not None:
            return levit_np.load(self.weights, backend=self.backend)
        return levit_np.create(self.variant, seed=self.seed, backend=self.backend)

    def describe(self) -> str:
        source = self.weights if self.weights is not None else f"{self.variant}, random weights (seed {self.seed})"
        return f"{source} [{self.backend}]"


@dataclass(frozen=True)
class Preprocessing:
    """The evaluation transform: resize the shorter side to floor(size / crop_pct) (bicubic), centre-crop."""

    crop_pct: float = 0.875
    size: int = 224
    interpolation: str = "bicubic"


def model_facts(model) -> dict:
    """What the results report about the model: variant, parameter count (millions, as timm), input size."""
    from levit_np.model.params import count_params

    return {"model": model.config.name, "param_count": round(count_params(model.config) / 1e6, 2)}


def pin_threads(threads: int) -> None:
    """Set every thread pool of this process to `threads` (Numba's can only be lowered once it is imported)."""
    timing.pin_threads(threads)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def evaluate_batch(model, items: list[tuple[str, str, int]], preprocessing: Preprocessing,
                   raise_unexpected: bool = False) -> list[dict]:
    """(image name, file path, label) per image -> one record per image, in the same order."""
    import numpy as np

    from levit_np.images.classify import prepare_arrays, top_predictions

    paths = [path for _name, path, _label in items]
    side = preprocessing.size
    arrays, errors = prepare_arrays(paths, preprocessing.crop_pct, raise_unexpected, (side, side))
    positions = sorted(arrays)
    ranked = (dict(zip(positions, top_predictions(model, np.stack([arrays[i] for i in positions]), TOP)))
              if positions else {})
    records = []
    for i, (name, _path, label) in enumerate(items):
        if i in ranked:
            records.append({"image": name, "label": label, "top5": [p.index for p in ranked[i]],
                            "probs": [round(p.probability, 7) for p in ranked[i]]})
        else:
            records.append({"image": name, "label": label, "error": errors[i]})
    return records


def classify_job(model, payload) -> list:
    """The job of `levit predict`'s workers: (paths, k, crop_pct, size, class names, raise_unexpected) ->
    ImageResults, in order."""
    from levit_np.images.classify import classify_batch

    paths, k, crop_pct, size, names, raise_unexpected = payload
    return classify_batch(model, paths, k=k, crop_pct=crop_pct, size=size, names=names,
                          raise_unexpected=raise_unexpected)
