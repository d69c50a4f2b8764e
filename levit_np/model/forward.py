"""The LeViT forward pass, written once against the kernel contract (`levit_np/kernels/contract.py`).

Read it next to the paper (arXiv 2104.01136, Fig. 4): a convolutional stem turns the image into a 14x14 grid
of tokens, three stages of attention + MLP blocks process it, two shrink-attention blocks halve the grid
between stages (14 -> 7 -> 4), and two linear heads classify the average token.

`k` is a backend's kernel module and `layers` what its `prepare` made of the checkpoint. Shapes use
B = batch, N = tokens (H*W of the current grid), C = channels, h = heads, kd = key width, d = value width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import numpy as np

from levit_np.model.config import Block, BlockKind, LevitConfig, StemConv, block_sequence, stem_convs

Hook = Callable[[str, np.ndarray], None]
Grid = tuple[int, int]  # (rows, cols) of the token grid


def stem(x: np.ndarray, layers: dict, k, convs: tuple[StemConv, ...]) -> np.ndarray:
    """Four stride-2 3x3 convs with BN, Hardswish after the first three. (B, 3, H, W) -> (B, C, H/16, W/16)"""
    for conv in convs:
        x = k.conv_bn(x, layers[conv.name], stride=conv.stride, padding=conv.padding, activation=conv.activation)
    return x


def to_tokens(x: np.ndarray, layers: dict) -> tuple[np.ndarray, Grid]:
    """The stem's feature map as a sequence of tokens, row by row. (B, C, H, W) -> (B, H*W, C), (H, W)"""
    b, c, rows, cols = x.shape
    return x.reshape(b, c, rows * cols).transpose(0, 2, 1), (rows, cols)  # token = row * W + col


def attention_block(x: np.ndarray, grid: Grid, block: Block, layers: dict, k) -> tuple[np.ndarray, Grid]:
    """Multi-head self-attention with the attention bias; the caller adds the residual. (B, N, C) -> (B, N, C)"""
    b, n, _ = x.shape
    h, kd, d = block.num_heads, block.key_dim, block.value_dim
    qkv = k.linear_bn(x, layers[f"{block.name}.qkv"]).reshape(b, n, h, 2 * kd + d)  # head-interleaved channels
    qkv = qkv.transpose(0, 2, 1, 3)  # (B, h, N, 2kd+d)
    q, key, v = qkv[..., :kd], qkv[..., kd:2 * kd], qkv[..., 2 * kd:]
    bias = layers[f"{block.name}.bias"].at(grid, grid)  # (h, N, N), from the learned (h, N) table
    out = k.attention(q, key, v, bias, layers[f"{block.name}.scale"], activation=block.attn_activation)  # (B, N, h*d)
    return k.linear_bn(out, layers[f"{block.name}.proj"]), grid


def subsample(x: np.ndarray, grid: Grid, stride: int = 2) -> tuple[np.ndarray, Grid]:
    """Keep every `stride`-th token in both directions. (B, H*W, C) -> (B, H'*W', C), H' = ceil(H / stride)"""
    b, _, c = x.shape
    kept = x.reshape(b, grid[0], grid[1], c)[:, ::stride, ::stride]
    return kept.reshape(b, -1, c), (kept.shape[1], kept.shape[2])


def shrink_attention_block(x: np.ndarray, grid: Grid, block: Block, layers: dict, k) -> tuple[np.ndarray, Grid]:
    """Attention whose queries come from a subsampled grid: halves the grid, widens C. Not residual.

    (B, N, C_in) -> (B, N', C_out) with N' the tokens of the ceil-halved grid.
    """
    b, n, _ = x.shape
    h, kd, d = block.num_heads, block.key_dim, block.value_dim
    kv = k.linear_bn(x, layers[f"{block.name}.kv"]).reshape(b, n, h, kd + d).transpose(0, 2, 1, 3)  # (B, h, N, kd+d)
    key, v = kv[..., :kd], kv[..., kd:]
    x_sub, q_grid = subsample(x, grid, block.bias_stride)  # (B, N', C_in)
    n_q = x_sub.shape[1]
    q = k.linear_bn(x_sub, layers[f"{block.name}.q"]).reshape(b, n_q, h, kd).transpose(0, 2, 1, 3)  # (B, h, N', kd)
    bias = layers[f"{block.name}.bias"].at(q_grid, grid)  # (h, N', N)
    out = k.attention(q, key, v, bias, layers[f"{block.name}.scale"], activation=block.attn_activation)  # (B, N', h*d)
    return k.linear_bn(out, layers[f"{block.name}.proj"]), q_grid


def mlp_block(x: np.ndarray, grid: Grid, block: Block, layers: dict, k) -> tuple[np.ndarray, Grid]:
    """Linear+BN to mlp_ratio*C, Hardswish, Linear+BN back; the caller adds the residual. (B, N, C) -> (B, N, C)"""
    hidden = k.linear_bn(x, layers[f"{block.name}.fc1"], activation=True)
    return k.linear_bn(hidden, layers[f"{block.name}.fc2"]), grid


BlockFunction = Callable[[np.ndarray, Grid, Block, dict, object], tuple[np.ndarray, Grid]]


@dataclass(frozen=True)
class Steps:
    """The functions the forward pass is made of: LeViT's below; the paper's ablations swap one of them
    (`levit_np/model/ablation_steps.py`), so the forward pass itself holds no ablation branches."""

    to_tokens: Callable[[np.ndarray, dict], tuple[np.ndarray, Grid]]
    block: Mapping[BlockKind, BlockFunction]


LEVIT = Steps(to_tokens=to_tokens, block={BlockKind.ATTENTION: attention_block, BlockKind.MLP: mlp_block,
                                          BlockKind.SHRINK: shrink_attention_block})


def forward(x: np.ndarray, cfg: LevitConfig, layers: dict, k, hook: Optional[Hook] = None,
            steps: Steps = LEVIT) -> np.ndarray:
    """Images to logits. (B, 3, H, W) float32, normalised -> (B, num_classes)

    `hook(name, array)` sees every named block's output: 'stem', each block of `config.blocks`, 'pool', 'logits'.
    """
    emit = hook or (lambda name, value: None)
    x = stem(x, layers, k, stem_convs(cfg))  # (B, C, H/16, W/16)
    emit("stem", x)
    x, grid = steps.to_tokens(x, layers)  # (B, N, C)
    for block in block_sequence(cfg):
        y, out_grid = steps.block[block.kind](x, grid, block, layers, k)
        x, grid = (x + y if block.kind.residual else y), out_grid  # attention and MLP blocks are residual
        emit(block.name, x)
    pooled = x.mean(axis=1)  # (B, C): the average token
    emit("pool", pooled)
    logits = k.classifier(pooled, layers["classifier"])  # (B, classes): both heads, averaged
    emit("logits", logits)
    return logits
