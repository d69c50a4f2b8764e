"""The metadata_props of an exported file: what the model is, where its weights came from, how to feed it.

Every value is a string (ONNX metadata is string -> string); lists are JSON. Nothing here depends on the time or
the path of the files, so the same export gives the same bytes.
"""

from __future__ import annotations

import json

from levit_np.export.onnx_graph import INPUT_NAME, OUTPUT_NAME
from levit_np.export.settings import ExportSettings
from levit_np.images.preprocessing import IMAGENET_MEAN, IMAGENET_STD, resize_size
from levit_np.model.config import LevitConfig


def preprocessing_metadata(settings: ExportSettings) -> dict[str, str]:
    """The evaluation transform the model expects (levit_np.images.preprocessing), as metadata entries.

    Square inputs: the official transform (shorter side -> floor(size / crop_pct), bicubic, centre crop).
    H x W inputs: resize (aspect kept) until the image covers floor(H / crop_pct) x floor(W / crop_pct), then crop.
    """
    height, width = settings.height, settings.width
    if height == width:
        resize = {"shorter_side": resize_size(height, settings.crop_pct)}
    else:
        resize = {"cover": [resize_size(height, settings.crop_pct), resize_size(width, settings.crop_pct)]}
    return {
        "preprocessing": (f"RGB; resize {json.dumps(resize)} (bicubic, aspect kept); centre crop {height}x{width}; "
                          "x / 255; (x - mean) / std; NCHW float32"),
        "resize": json.dumps(resize),
        "interpolation": "bicubic",
        "crop": json.dumps([height, width]),
        "crop_pct": repr(settings.crop_pct),
        "mean": json.dumps(list(IMAGENET_MEAN)),
        "std": json.dumps(list(IMAGENET_STD)),
    }


def model_metadata(cfg: LevitConfig, settings: ExportSettings, provenance: dict[str, str]) -> dict[str, str]:
    """All metadata entries, in a fixed order: the model, the weights' provenance, then the preprocessing."""
    from levit_np.version import __version__

    batch = "dynamic" if settings.batch is None else str(settings.batch)
    entries = {
        "variant": cfg.name,
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
        "input": f"{INPUT_NAME}: float32 (batch, {cfg.in_chans}, {settings.height}, {settings.width}), batch {batch}",
        "output": f"{OUTPUT_NAME}: float32 (batch, {cfg.num_classes}), the mean of the class and distillation heads",
        "exporter": f"levit-np {__version__}",
    }
    entries.update(provenance)
    entries.update(preprocessing_metadata(settings))
    return entries
