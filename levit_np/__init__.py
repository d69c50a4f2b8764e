"""levit-np: LeViT (Graham et al., arXiv 2104.01136) in plain NumPy, with a Numba fast path.

    >>> import levit_np
    >>> model = levit_np.load("levit_128s")              # official weights, fetched on first use; or a file path
    >>> model.classify("cat.jpg", k=3)                   # [{"label": ..., "wnid": ..., "index": ..., "probability": ...}, ...]
    >>> logits = model(levit_np.preprocess("cat.jpg")[None])   # (1, 1000)
"""

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


def models() -> list:
    """The names `load` and `create` accept: the five released variants (timm names), each with official weights."""
    return list(VARIANTS)


def load(source, backend: str = "numpy", variant=None, class_names=None, progress=None,
         dtype: str = "float32") -> "LevitModel":
    """A model from a file or by name.

    `source`: a levit-np `.h5` file, any checkpoint `levit convert` reads (converted in memory; `variant`
    checks which it must be), or a model name (`"levit_128s"`, `"128s"`, `"LeViT-256"`: see `models()`), whose
    official weights are downloaded, checked, converted and cached on first use (`levit_np.weights.hub`;
    `progress(file, done_bytes, total_bytes)` follows the download). `class_names`: a file with one name per
    line, for a checkpoint whose head has other classes than ImageNet's 1000. `backend`: "numpy" (the
    reference), "numba" (compiled) or "auto" (numpy for small work, numba for large). `dtype`: "float32", or
    "float64" to run the reference in double precision (an accuracy yardstick).
    """
    import os

    from levit_np.images.labels import class_names_for
    from levit_np.levit_model import LevitModel
    from levit_np.model.config import variant_name
    from levit_np.weights.fileio import is_hdf5

    path = os.fspath(source)
    if not os.path.exists(path):
        try:
            name = variant_name(path)
        except ValueError:
            raise WeightsFileError(f"{path}: no such file, and not a model name (known: {', '.join(VARIANTS)})") \
                from None
        from levit_np.weights.hub import fetch

        path = os.fspath(fetch(name, progress=progress))
    if is_hdf5(path):
        from levit_np.weights.hdf5_file import read_weights

        info, params = read_weights(path)
        cfg = info.config
    else:
        from levit_np.weights.convert import read_checkpoint

        conversion = read_checkpoint(path, variant)
        cfg, params = conversion.config, conversion.params
    names = class_names_for(cfg.num_classes, class_names)
    return LevitModel(cfg, params, backend, dtype, source=path, weights_file=path, class_names=names)


def create(variant: str, seed: int = 0, backend: str = "numpy", dtype: str = "float32") -> "LevitModel":
    """A model with random weights (random BN statistics and attention biases too), for tests and timing.
    `backend` and `dtype` as for `load`."""
    from levit_np.levit_model import LevitModel
    from levit_np.model.params import random_params

    cfg = get_config(variant)
    return LevitModel(cfg, random_params(cfg, seed), backend, dtype, source=f"random weights (seed {seed})")


def preprocess(images, **kwargs):
    """The official evaluation transform: a path or PIL image -> float32 (3, 224, 224); a list or tuple of them ->
    (B, 3, 224, 224). Keywords: `crop_pct` (0.875), `size` (224), `exif_transpose` (False)."""
    from levit_np.images.preprocessing import preprocess as preprocess_one
    from levit_np.images.preprocessing import preprocess_batch

    if isinstance(images, (list, tuple)):
        return preprocess_batch(images, **kwargs)
    return preprocess_one(images, **kwargs)


__all__ = ["load", "create", "models", "preprocess", "LevitModel", "LevitConfig", "VARIANTS", "get_config",
           "LevitError", "CheckpointError", "ConversionError", "ImageError", "WeightsFileError", "__version__"]
