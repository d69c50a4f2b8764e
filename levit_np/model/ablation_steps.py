"""The paper's Table 5 ablations (`levit_np/analysis/ablations.py`) as substitutions in the forward pass's steps.

Most ablations are data: A1 (no pyramid) and A6 (narrower blocks) are other widths and depths, A2 (a 16x16
patch conv) is another `config.stem_convs`, A7 (no attention activation) is `Block.attn_activation`, and a model
without attention biases gets a zero `GridBias`. Two change what a step does, and are swapped in here:
    A3  pre-LayerNorm: every block's branch sees LayerNorm(x) (its linears have a bias and no BatchNorm)
    A5  absolute position: one learned embedding added to the tokens, DeiT-style, instead of attention biases
"""

from __future__ import annotations

import dataclasses

import numpy as np

from levit_np.model.config import LevitConfig
from levit_np.model.forward import LEVIT, BlockFunction, Grid, Steps, to_tokens


def with_pre_layernorm(branch: BlockFunction) -> BlockFunction:
    """A block whose branch runs on LayerNorm(x) (ablation A3); the residual still adds to x. (B, N, C) -> (B, N, C')"""
    def pre_normed(x: np.ndarray, grid: Grid, block, layers: dict, k) -> tuple[np.ndarray, Grid]:
        return branch(k.layernorm(x, layers[f"{block.name}.norm"]), grid, block, layers, k)

    return pre_normed


def to_tokens_with_absolute_position(x: np.ndarray, layers: dict) -> tuple[np.ndarray, Grid]:
    """Tokens plus a learned embedding per position (ablation A5), defined only at its training grid.

    (B, C, H, W) -> (B, H*W, C), (H, W)
    """
    tokens, grid = to_tokens(x, layers)
    pos_embed = layers["pos_embed"]  # (1, N, C)
    if pos_embed.shape[1] != grid[0] * grid[1]:
        raise ValueError(f"the absolute position embedding has {pos_embed.shape[1]} tokens; "
                         f"this input gives a {grid[0]}x{grid[1]} grid")
    return tokens + pos_embed, grid


def steps_for(cfg: LevitConfig) -> Steps:
    """The forward pass's steps for `cfg`: LeViT's, with an ablation's substitute where its switches say so."""
    steps = LEVIT
    if cfg.norm == "ln":
        steps = dataclasses.replace(steps, block={kind: with_pre_layernorm(fn) for kind, fn in steps.block.items()})
    if cfg.position == "absolute":
        steps = dataclasses.replace(steps, to_tokens=to_tokens_with_absolute_position)
    return steps
