"""The LeViT forward pass, written once against a kernel namespace (see `kernels/reference.py`).

Read it next to the paper (arXiv 2104.01136, Fig. 4): a convolutional stem turns the image into a 14x14 grid
of tokens, three stages of attention + MLP blocks process it, two shrink-attention blocks halve the grid
between stages (14 -> 7 -> 4), and two linear heads classify the average token.

Shapes use B = batch, N = tokens (H*W of the current grid), C = channels, h = heads, kd = key width,
d = value width.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from levit_np.model.attention_bias import gather_bias
from levit_np.model.config import Block, LevitConfig, StemConv, blocks, stem_convs

Hook = Callable[[str, np.ndarray], None]


def stem(x: np.ndarray, layers: dict, k, convs: tuple[StemConv, ...]) -> np.ndarray:
    """Four stride-2 3x3 convs with BN, Hardswish after the first three. (B, 3, H, W) -> (B, C, H/16, W/16)

    (`convs` = config.stem_convs; the ablation A2 has one 16x16 stride-16 conv instead.)
    """
    for conv in convs:
        x = k.conv_bn(x, layers[conv.name], stride=conv.stride, padding=conv.padding, activation=conv.activation)
    return x


def attention_block(x: np.ndarray, block: Block, layers: dict, bias: np.ndarray, k) -> np.ndarray:
    """Multi-head self-attention with the attention bias; the caller adds the residual. (B, N, C) -> (B, N, C)"""
    b, n, _ = x.shape
    h, kd, d = block.num_heads, block.key_dim, block.value_dim
    qkv = k.linear_bn(x, layers[f"{block.name}.qkv"]).reshape(b, n, h, 2 * kd + d)  # head-interleaved channels
    qkv = qkv.transpose(0, 2, 1, 3)  # (B, h, N, 2kd+d)
    q, key, v = qkv[..., :kd], qkv[..., kd:2 * kd], qkv[..., 2 * kd:]
    out = k.attention(q, key, v, bias, layers[f"{block.name}.scale"], activation=block.attn_activation)  # (B, N, h*d)
    return k.linear_bn(out, layers[f"{block.name}.proj"])


def subsample(x: np.ndarray, grid: tuple[int, int], stride: int = 2) -> tuple[np.ndarray, tuple[int, int]]:
    """Keep every `stride`-th token in both directions. (B, H*W, C) -> (B, H'*W', C), H' = ceil(H / stride)"""
    b, _, c = x.shape
    kept = x.reshape(b, grid[0], grid[1], c)[:, ::stride, ::stride]
    return kept.reshape(b, -1, c), (kept.shape[1], kept.shape[2])


def shrink_attention_block(x: np.ndarray, grid: tuple[int, int], block: Block, layers: dict, k,
                           bias_for: Callable) -> tuple[np.ndarray, tuple[int, int]]:
    """Attention whose queries come from a subsampled grid: halves the grid, widens C. Not residual.

    (B, N, C_in) -> (B, N', C_out) with N' the tokens of the ceil-halved grid.
    """
    b, n, _ = x.shape
    h, kd, d = block.num_heads, block.key_dim, block.value_dim
    kv = k.linear_bn(x, layers[f"{block.name}.kv"]).reshape(b, n, h, kd + d).transpose(0, 2, 1, 3)  # (B, h, N, kd+d)
    key, v = kv[..., :kd], kv[..., kd:]
    x_sub, q_grid = subsample(x, grid)  # (B, N', C_in)
    n_q = x_sub.shape[1]
    q = k.linear_bn(x_sub, layers[f"{block.name}.q"]).reshape(b, n_q, h, kd).transpose(0, 2, 1, 3)  # (B, h, N', kd)
    out = k.attention(q, key, v, bias_for(block, q_grid, grid, 2), layers[f"{block.name}.scale"],
                      activation=block.attn_activation)  # (B, N', h*d); no Hardswish in the ablation A7
    return k.linear_bn(out, layers[f"{block.name}.proj"]), q_grid


def absolute_position(pos_embed: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """DeiT-style position embedding (ablation A5), defined only at its training grid. (1, N, C) -> (1, N, C)"""
    if pos_embed.shape[1] != grid[0] * grid[1]:
        raise ValueError(f"the absolute position embedding has {pos_embed.shape[1]} tokens; "
                         f"this input gives a {grid[0]}x{grid[1]} grid")
    return pos_embed


def mlp_block(x: np.ndarray, block: Block, layers: dict, k) -> np.ndarray:
    """Linear+BN to mlp_ratio*C, Hardswish, Linear+BN back; the caller adds the residual. (B, N, C) -> (B, N, C)"""
    hidden = k.linear_bn(x, layers[f"{block.name}.fc1"], activation=True)
    return k.linear_bn(hidden, layers[f"{block.name}.fc2"])


def forward(x: np.ndarray, cfg: LevitConfig, layers: dict, k, bias_for: Callable,
            hook: Optional[Hook] = None) -> np.ndarray:
    """Images to logits. (B, 3, H, W) float32, normalised -> (B, num_classes)

    `layers` are the prepared parameters of backend `k`; `bias_for(block, q_grid, k_grid, stride)` returns
    the gathered attention bias (h, Nq, Nk); `hook(name, array)` sees every named block's output.
    """
    emit = hook or (lambda name, value: None)
    x = stem(x, layers, k, stem_convs(cfg))  # (B, C, H/16, W/16)
    emit("stem", x)
    b, c, gh, gw = x.shape
    grid = (gh, gw)
    x = x.reshape(b, c, gh * gw).transpose(0, 2, 1)  # (B, N, C), token = row * W + col
    if cfg.position == "absolute":  # ablation A5: one learned embedding per token instead of attention biases
        x = x + absolute_position(layers["pos_embed"], grid)
    for block in blocks(cfg):
        y = k.layernorm(x, layers[f"{block.name}.norm"]) if cfg.norm == "ln" else x  # pre-LayerNorm: ablation A3
        if block.kind == "attn":
            x = x + attention_block(y, block, layers, bias_for(block, grid, grid, 1), k)
        elif block.kind == "mlp":
            x = x + mlp_block(y, block, layers, k)
        else:
            x, grid = shrink_attention_block(y, grid, block, layers, k, bias_for)
        emit(block.name, x)
    pooled = x.mean(axis=1)  # (B, C): the average token
    emit("pool", pooled)
    logits = k.classifier(pooled, layers["head"], layers["head_dist"])  # (B, classes)
    emit("logits", logits)
    return logits


class BiasCache:
    """Gathers each block's bias table into (h, Nq, Nk) once per grid size, then reuses it.

    `layout` (a backend's `bias_layout`, if it has one) rearranges the gathered bias once, e.g. transposed.
    """

    def __init__(self, layers: dict, layout: Optional[Callable] = None):
        self._layers = layers
        self._layout = layout or (lambda bias: bias)
        self._cache: dict = {}

    def __call__(self, block: Block, q_grid: tuple[int, int], k_grid: tuple[int, int], stride: int) -> np.ndarray:
        key = (block.name, q_grid, k_grid)
        if key not in self._cache:
            table = self._layers.get(f"{block.name}.attention_biases")
            if table is None:  # ablation A5 has no attention biases: a zero bias keeps one attention kernel
                bias = np.zeros((block.num_heads, q_grid[0] * q_grid[1], k_grid[0] * k_grid[1]), np.float32)
            else:
                bias = gather_bias(table, q_grid, k_grid, stride)
            self._cache[key] = self._layout(np.ascontiguousarray(bias, dtype=np.float32))
        return self._cache[key]
