"""Backends: a kernel namespace plus the `prepare` step that turns checkpoint tensors into its layers.

`auto` is not a kernel module but a rule over the two: the NumPy reference for small work, Numba for large work.
The compiled path costs about 0.6 s once per process (importing Numba, ~0.33 s and ~90 MB, then loading its
cached machine code), which one photo of a small LeViT never wins back (the reference needs ~0.05 s for
LeViT-128S); from a few images on it does. So `auto` picks by the work of each call, in multiply-adds.

Importing this module loads neither NumPy nor Numba (the command line reads its tables to build `--backend`).
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

from levit_np.model.config import VARIANTS, LevitConfig  # NumPy-free

BACKENDS = {
    "numpy": "levit_np.kernels.reference",
    "numba": "levit_np.kernels.fast",
}
AUTO = "auto"
CHOICES = (AUTO,) + tuple(BACKENDS)  # what a user may ask for

# From this much work in one call (multiply-adds) `auto` runs Numba. LeViT-128S is 0.305 G per 224x224 image,
# LeViT-256 1.13 G, LeViT-384 2.35 G. Below it the reference finishes before Numba would have loaded.
AUTO_NUMBA_MACS = 3e9


def is_released_architecture(cfg: LevitConfig) -> bool:
    """True if `cfg` is one of the five released variants (any class count or image size): what numba runs."""
    return any(dataclasses.replace(cfg, name=variant.name, num_classes=variant.num_classes,
                                   img_size=variant.img_size) == variant for variant in VARIANTS.values())


def auto_backend(cfg: LevitConfig, macs: float, numba_ready: bool = False) -> str:
    """The backend `auto` runs for a call of `macs` multiply-adds on model `cfg`: numba for large work on the
    released architectures, or once Numba is loaded for this model (`numba_ready`); else the reference."""
    if not is_released_architecture(cfg):
        return "numpy"  # the paper's ablations run on the reference only
    return "numba" if numba_ready or macs >= AUTO_NUMBA_MACS else "numpy"


def describe_auto() -> str:
    """One sentence on what `auto` chooses, for `--help` and docs."""
    return (f"auto runs numpy for forward passes under {AUTO_NUMBA_MACS / 1e9:g} G multiply-adds (a few photos: "
            "no Numba start-up; LeViT-128S is 0.31 G per image, LeViT-384 2.35 G) and numba from there on")


def get_backend(name: str) -> ModuleType:
    """The kernel module of backend `name` ('numpy' is the reference; 'auto' is resolved by `auto_backend` first)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])
