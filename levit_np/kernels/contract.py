"""The kernel contract: every kernel the forward pass (`levit_np/model/forward.py`) calls, and what it means.

A backend is one module that defines `NAME`, `prepare`, `run_batch` and every kernel below with these exact
signatures (`tests/test_kernel_contract.py` checks each registered backend). `kernels/reference.py` is the
spec: plain NumPy, BatchNorm unfolded. A faster backend may store its layers in any form it likes, because only
its own kernels read them; whatever it changes (folded BatchNorm, the attention scale moved into q, the two
heads merged, a transposed bias) it changes in `prepare`, once, so the forward pass never asks a backend which
variant of a kernel it has.

`prepare(cfg, params) -> layers`, a dict holding, for the model `cfg`:
    "stem.conv1" ... one entry per stem conv (`config.stem_convs`): the layer `conv_bn` takes
    "<block>.<sub>"   every conv/linear of every block (`params.block_layers`): the layer `linear_bn` takes
    "<block>.scale"   float, the factor `attention` applies to q k^T (kd^-0.5, or 1.0 if prepare folded it into q)
    "<block>.bias"    an `attention_bias.GridBias`: `.at(q_grid, k_grid)` gives the bias `attention` takes
    "classifier"      the layer `classifier` takes: both heads (the distilled model averages them)
and, for the paper's ablations only (see `model/ablation_steps.py`): "<block>.norm" (A3), "pos_embed" (A5).

Shapes: B batch, C channels, N tokens, h heads, kd key width, d value width.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

Layer = Any  # whatever the backend's `prepare` made for one layer; only that backend's kernels read it


class Kernels(Protocol):
    """The functions a backend module provides (a module satisfies this Protocol structurally)."""

    NAME: str

    def prepare(self, cfg, params: dict[str, np.ndarray]) -> dict:
        """The checkpoint's tensors (canonical names, `params.param_shapes`) -> the layers dict described above."""

    def run_batch(self, run, x: np.ndarray) -> np.ndarray:
        """run(x) for `run`, a whole forward pass (B, 3, H, W) -> (B, classes) without hooks: how the backend
        spreads a batch over its threads (the numba backend: a large batch in shards side by side)."""

    def conv_bn(self, x: np.ndarray, layer: Layer, stride: int, padding: int, activation: bool = False) -> np.ndarray:
        """Conv2d (no bias), BatchNorm2d, Hardswish if `activation`. (B, Cin, H, W) -> (B, Cout, Ho, Wo)"""

    def linear_bn(self, x: np.ndarray, layer: Layer, activation: bool = False) -> np.ndarray:
        """Linear (no bias), BatchNorm1d over channels, Hardswish if `activation`. (..., Cin) -> (..., Cout)"""

    def layernorm(self, x: np.ndarray, layer: Layer) -> np.ndarray:
        """LayerNorm over the last axis (ablation A3 only). (..., C) -> (..., C)"""

    def attention(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray, scale: float,
                  activation: bool = True) -> np.ndarray:
        """softmax(q k^T * scale + bias) v per head, heads concatenated, Hardswish if `activation`.

        q (B, h, Nq, kd), k (B, h, Nk, kd), v (B, h, Nk, d) (strided views allowed), bias from `GridBias.at`
        -> (B, Nq, h*d)
        """

    def classifier(self, x: np.ndarray, layer: Layer) -> np.ndarray:
        """The distilled model's eval output: the mean of the class head and the distillation head, each
        BatchNorm1d then Linear with bias. (B, C) -> (B, classes)"""


KERNELS = ("conv_bn", "linear_bn", "layernorm", "attention", "classifier")  # what forward may call
BACKEND_FUNCTIONS = ("prepare", "run_batch") + KERNELS
