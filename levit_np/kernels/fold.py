"""Load-time folding: turn the checkpoint's conv/linear + BatchNorm pairs into plain affine layers.

At inference a BatchNorm is a fixed per-channel affine map, so it merges exactly (up to rounding) into the
product next to it (levit-spec §1.5). Two more exact rewrites follow from linearity: the attention scale kd^-0.5
moves into the query rows of the projection that produces q, and the two classifier heads, both linear in the
same pooled vector, merge into one. Every function here is pure NumPy, computes in float64 and returns float32.

Notation: s = gamma / sqrt(running_var + eps) per channel; mu = running_mean, beta = BN bias.
"""

from __future__ import annotations

import numpy as np

from levit_np.model.config import BlockKind, LevitConfig, blocks, stem_convs
from levit_np.kernels.reference import BN_EPS
from levit_np.model.params import block_layers, group_layers


def bn_scale_shift(layer: dict) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm at eval as y = x * s + t: s = gamma / sqrt(var + eps), t = beta - mu * s. float64 (C,), (C,)"""
    gamma = layer["bn.weight"].astype(np.float64)
    scale = gamma / np.sqrt(layer["bn.running_var"].astype(np.float64) + BN_EPS)
    shift = layer["bn.bias"].astype(np.float64) - layer["bn.running_mean"].astype(np.float64) * scale
    return scale, shift


def fold_bn_after(layer: dict) -> dict:
    """Conv/linear W (no bias) followed by BN: W' = W * s (per output channel), b' = beta - mu * s.

    {"weight": (Cout, ...), "bn.*": (Cout,)} -> {"weight": (Cout, ...), "bias": (Cout,)}, float32.
    """
    scale, shift = bn_scale_shift(layer)
    weight = layer["weight"].astype(np.float64)
    folded = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    return {"weight": folded.astype(np.float32), "bias": shift.astype(np.float32)}


def fold_bn_before(layer: dict) -> dict:
    """BN followed by a linear with bias (a classifier head): W' = W * s[None, :], b' = W (beta - mu * s) + b.

    {"bn.*": (C,), "weight": (classes, C), "bias": (classes,)} -> {"weight": (classes, C), "bias": (classes,)}.
    """
    scale, shift = bn_scale_shift(layer)
    weight = layer["weight"].astype(np.float64)
    bias = weight @ shift + layer["bias"].astype(np.float64)
    return {"weight": (weight * scale[None, :]).astype(np.float32), "bias": bias.astype(np.float32)}


def query_rows(num_heads: int, group: int, key_dim: int) -> np.ndarray:
    """Output rows holding q in a head-interleaved projection: rows [h*group, h*group + kd) of every head h.

    group = 2kd + d for the qkv of an attention block; group = kd when every row is q (the shrink block's q).
    """
    starts = np.arange(num_heads) * group
    return (starts[:, None] + np.arange(key_dim)[None, :]).ravel()


def fold_query_scale(layer: dict, rows: np.ndarray, scale: float) -> dict:
    """q k^T * scale == (scale * q) k^T: multiply the weight rows and bias entries that produce q by `scale`.

    {"weight": (Cout, Cin), "bias": (Cout,)} -> the same shapes, float32.
    """
    weight = layer["weight"].astype(np.float64)
    bias = layer["bias"].astype(np.float64)
    weight[rows] *= scale
    bias[rows] *= scale
    return {"weight": weight.astype(np.float32), "bias": bias.astype(np.float32)}


def merge_heads(head: dict, head_dist: dict) -> dict:
    """(x W1^T + b1 + x W2^T + b2) / 2 == x ((W1 + W2) / 2)^T + (b1 + b2) / 2 for two folded heads."""
    weight = (head["weight"].astype(np.float64) + head_dist["weight"].astype(np.float64)) / 2
    bias = (head["bias"].astype(np.float64) + head_dist["bias"].astype(np.float64)) / 2
    return {"weight": weight.astype(np.float32), "bias": bias.astype(np.float32)}


def fold_model(cfg: LevitConfig, params: dict[str, np.ndarray]) -> dict:
    """Every layer of a checkpoint folded: {prefix: {"weight", "bias"}} for the stem convs and block linears,
    {"head": merged head}, and the attention-bias tables unchanged under their own names.

    After this the attention scale is 1: it lives in the q rows of `qkv` (attention blocks) and of `q` (shrink).
    """
    layers = group_layers(cfg, {name: np.asarray(value, dtype=np.float32) for name, value in params.items()})
    folded: dict = {}
    for conv in stem_convs(cfg):
        folded[conv.name] = fold_bn_after(layers[conv.name])
    for block in blocks(cfg):
        for sub in block_layers(block):
            folded[f"{block.name}.{sub}"] = fold_bn_after(layers[f"{block.name}.{sub}"])
        if block.kind is BlockKind.ATTENTION:
            rows = query_rows(block.num_heads, 2 * block.key_dim + block.value_dim, block.key_dim)
            folded[f"{block.name}.qkv"] = fold_query_scale(folded[f"{block.name}.qkv"], rows, block.key_dim ** -0.5)
        elif block.kind is BlockKind.SHRINK:
            rows = query_rows(block.num_heads, block.key_dim, block.key_dim)
            folded[f"{block.name}.q"] = fold_query_scale(folded[f"{block.name}.q"], rows, block.key_dim ** -0.5)
        if block.kind.has_attention:
            folded[f"{block.name}.attention_biases"] = layers[f"{block.name}.attention_biases"]
    folded["head"] = merge_heads(fold_bn_before(layers["head"]), fold_bn_before(layers["head_dist"]))
    return folded
