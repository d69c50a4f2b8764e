"""The loaded model: parameters, a backend's prepared layers, and the forward pass run on that backend's kernels.

It sits above both the forward pass (`levit_np.model`) and the kernels (`levit_np.kernels`): choosing a backend
is the only thing that ties the two together.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from levit_np.kernels.backends import get_backend
from levit_np.model.ablation_steps import steps_for
from levit_np.model.config import Block, LevitConfig, blocks
from levit_np.model.forward import Hook, forward
from levit_np.model.grid import check_input_size


class LevitModel:
    """A loaded LeViT: `model(x)` gives logits, `model.trace(x)` every named block's output."""

    def __init__(self, cfg: LevitConfig, params: dict[str, np.ndarray], backend: str = "numpy"):
        self.config = cfg
        self.params = params
        self.backend = backend
        self.kernels = get_backend(backend)
        self.layers = self.kernels.prepare(cfg, params)
        self.steps = steps_for(cfg)

    def __call__(self, x: np.ndarray, hook: Optional[Hook] = None) -> np.ndarray:
        """(B, 3, H, W) float32 normalised images -> (B, num_classes) float32 logits"""
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(f"expected images of shape (B, {self.config.in_chans}, H, W), got {x.shape}")
        check_input_size(x.shape[2], x.shape[3], self.config.patch_size)  # any multiple of 16, not only 224
        x = np.ascontiguousarray(x, dtype=np.float32)
        return forward(x, self.config, self.layers, self.kernels, hook, self.steps)

    def trace(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every named block's output, in order: 'stem', each block of `config.blocks`, 'pool', 'logits'."""
        out: dict[str, np.ndarray] = {}
        self(x, hook=lambda name, value: out.__setitem__(name, np.array(value)))
        return out

    def block_names(self) -> list[str]:
        """The names `trace` reports, in order."""
        return ["stem"] + [block.name for block in blocks(self.config)] + ["pool", "logits"]

    def bias_for(self, block: Block, q_grid: tuple[int, int], k_grid: tuple[int, int]) -> np.ndarray:
        """Block `block`'s attention bias for these grids, as this backend's `attention` takes it. -> (h, Nq, Nk)"""
        return self.layers[f"{block.name}.bias"].at(q_grid, k_grid)
