"""The pieces of one transformer block, split the way the paper's block-timing table splits them.

A block written with these ops calls each piece through `step(row, fn, *args)`: `run_direct` just calls
`fn(*args)`; the profiler (block_table.py) times each call instead. Rows, and what each one includes:
    layernorm             LayerNorm (DeiT only; LeViT has BatchNorm, folded into the linears)
    keys_qk               the Q and K linears (with their bias)
    values_v              the V linear
    product_qkt           Q K^T, the scale, the attention bias (LeViT) and the softmax
    product_av            A V, heads concatenated
    attention_projection  the attention activation (LeViT's Hardswish), the proj linear and the residual add
    mlp                   fc1, Hardswish, fc2 and the residual add
Q/K channels are laid out [q of every head | k of every head] and V head-major, as timm's DeiT stores them.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from levit_np.kernels.reference import hardswish, linear, softmax

ROWS = ("layernorm", "keys_qk", "values_v", "product_qkt", "product_av", "attention_projection", "mlp")


def run_direct(row: str, fn: Callable, *args):
    """The default `step`: run the piece."""
    return fn(*args)


def attention_scores(qk: np.ndarray, heads: int, bias: Optional[np.ndarray]) -> np.ndarray:
    """softmax(q k^T / sqrt(kd) + bias) per head. qk (B, N, 2*h*kd), bias (h, N, N) or None -> (B, h, N, N)"""
    b, n, width = qk.shape
    kd = width // (2 * heads)
    qk = qk.reshape(b, n, 2, heads, kd).transpose(2, 0, 3, 1, 4)  # (2, B, h, N, kd)
    logits = (qk[0] @ qk[1].transpose(0, 1, 3, 2)) * np.float32(kd ** -0.5)  # (B, h, N, N)
    if bias is not None:
        logits = logits + bias
    return softmax(logits, axis=-1)


def attention_mix(attn: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A V per head, heads concatenated. attn (B, h, N, N), v (B, N, h*d) -> (B, N, h*d)"""
    b, heads, n, _ = attn.shape
    v = v.reshape(b, n, heads, -1).transpose(0, 2, 1, 3)  # (B, h, N, d)
    return (attn @ v).transpose(0, 2, 1, 3).reshape(b, n, -1)


def projection_residual(x: np.ndarray, out: np.ndarray, proj: dict, activation: bool) -> np.ndarray:
    """x + proj(act(out)), act = Hardswish for LeViT, none for DeiT. (B, N, h*d) -> (B, N, C)"""
    return x + linear(hardswish(out) if activation else out, proj)


def mlp_residual(x: np.ndarray, h: np.ndarray, fc1: dict, fc2: dict) -> np.ndarray:
    """x + fc2(Hardswish(fc1(h))), h = x or its LayerNorm. (B, N, C) -> (B, N, C)"""
    return x + linear(linear(h, fc1, activation=True), fc2)
