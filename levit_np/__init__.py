"""levit-np: LeViT (Graham et al., arXiv 2104.01136) in plain NumPy, with a Numba fast path.

    >>> import levit_np
    >>> model = levit_np.load("levit_128s.h5")          # or any checkpoint `levit convert` reads
    >>> logits = model(levit_np.preprocess("cat.jpg")[None])   # (1, 1000)
"""

from __future__ import annotations

import os

from levit_np.errors import CheckpointError, ConversionError, ImageError, LevitError, WeightsFileError
from levit_np.model.config import VARIANTS, LevitConfig, get_config
from levit_np.version import __version__


def __getattr__(name: str):
    """`LevitModel` is imported on first use, so `import levit_np.model.config` (the CLI's option lists) stays
    free of NumPy and thread counts can still be fixed before NumPy loads."""
    if name == "LevitModel":
        from levit_np.levit_model import LevitModel

        return LevitModel
    raise AttributeError(f"module 'levit_np' has no attribute {name!r}")


def load(path: str | os.PathLike, backend: str = "numpy", variant: str | None = None,
         dtype: str = "float32") -> "LevitModel":
    """Load a model from a levit-np `.h5` file, or from any checkpoint `levit convert` reads (converted in memory).

    backend: "numpy" (the reference), "numba" (compiled) or "auto" (numpy for small work, numba for large).
    dtype: "float32", or "float64" to run the reference in double precision (an accuracy yardstick).
    """
    from levit_np.weights.fileio import is_hdf5
    from levit_np.levit_model import LevitModel

    if is_hdf5(path):
        from levit_np.weights.hdf5_file import read_weights

        info, params = read_weights(path)
        return LevitModel(info.config, params, backend, dtype)
    from levit_np.weights.convert import read_checkpoint

    conversion = read_checkpoint(path, variant)
    return LevitModel(conversion.config, conversion.params, backend, dtype)


def create(variant: str, seed: int = 0, backend: str = "numpy", dtype: str = "float32") -> "LevitModel":
    """A model with random weights (random BN statistics and attention biases too), for tests and timing.
    `backend` and `dtype` as for `load`."""
    from levit_np.levit_model import LevitModel
    from levit_np.model.params import random_params

    cfg = get_config(variant)
    return LevitModel(cfg, random_params(cfg, seed), backend, dtype)


def preprocess(image, **kwargs):
    """A path or PIL image -> float32 (3, 224, 224), exactly the official evaluation transform."""
    from levit_np.images.preprocessing import preprocess as _preprocess

    return _preprocess(image, **kwargs)


__all__ = ["load", "create", "preprocess", "LevitModel", "LevitConfig", "VARIANTS", "get_config", "LevitError",
           "CheckpointError", "ConversionError", "ImageError", "WeightsFileError", "__version__"]
