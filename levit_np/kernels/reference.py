"""Reference kernels in plain NumPy: the readable spec every fast kernel is tested against.

Each "layer" argument is a dict of one convolution or linear layer followed by its BatchNorm, exactly as
the checkpoint stores it: `weight`, `bn.weight` (gamma), `bn.bias` (beta), `bn.running_mean`,
`bn.running_var`. Nothing is folded here: BatchNorm runs as written in the paper's code, after the product.
All arithmetic stays in float32, as the official model runs; given float64 layers (`prepare` keeps float64
tensors float64: `levit_np.load(path, dtype="float64")`) every kernel computes in float64 instead, the yardstick
the float32 backends are measured against (`levit_np/perf/truth.py`).
"""

from __future__ import annotations

import numpy as np

BN_EPS = 1e-5  # PyTorch's BatchNorm default, used by every LeViT BatchNorm
LN_EPS = 1e-5  # PyTorch's LayerNorm default (the A3 ablation and the DeiT block of the block table)

NAME = "numpy"


def hardswish(x: np.ndarray) -> np.ndarray:
    """x * relu6(x + 3) / 6: 0 for x <= -3, x for x >= 3 (PyTorch's Hardswish). Any shape."""
    return x * np.clip(x + np.float32(3), 0, 6, dtype=x.dtype) / np.float32(6)


def batchnorm(x: np.ndarray, layer: dict, axis: int = -1) -> np.ndarray:
    """Inference BatchNorm with running statistics, per channel along `axis`. Any shape."""
    shape = [1] * x.ndim
    shape[axis] = -1
    inv_std = (1.0 / np.sqrt(layer["bn.running_var"] + np.float32(BN_EPS))).astype(x.dtype)
    scale = (layer["bn.weight"] * inv_std).reshape(shape)
    return (x - layer["bn.running_mean"].reshape(shape)) * scale + layer["bn.bias"].reshape(shape)


def linear(x: np.ndarray, layer: dict, activation: bool = False) -> np.ndarray:
    """Linear with bias (`weight` (Cout, Cin), `bias` (Cout,)), then Hardswish if asked. (..., Cin) -> (..., Cout)"""
    y = x @ layer["weight"].T + layer["bias"]
    return hardswish(y) if activation else y


def linear_bn(x: np.ndarray, layer: dict, activation: bool = False) -> np.ndarray:
    """Linear without bias, then BatchNorm1d over channels, then Hardswish if asked. (..., Cin) -> (..., Cout).

    A layer stored without BatchNorm (the LayerNorm ablation A3: `weight` and `bias` only) is a plain `linear`.
    """
    if "bn.weight" not in layer:
        return linear(x, layer, activation)
    y = batchnorm(x @ layer["weight"].T, layer, axis=-1)
    return hardswish(y) if activation else y


def layernorm(x: np.ndarray, layer: dict) -> np.ndarray:
    """LayerNorm over the last axis with `weight` (gamma) and `bias` (beta), PyTorch's eps. (..., C) -> (..., C)"""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(LN_EPS)) * layer["weight"] + layer["bias"]


def conv_bn(x: np.ndarray, layer: dict, stride: int, padding: int, activation: bool = False) -> np.ndarray:
    """Conv2d (no bias) as im2col + one matrix product, then BatchNorm2d, then Hardswish if asked.

    (B, Cin, H, W) -> (B, Cout, Ho, Wo) with Ho = (H + 2*padding - k) // stride + 1.
    """
    weight = layer["weight"]  # (Cout, Cin, k, k)
    cout, cin, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    b, _, ho, wo = windows.shape[:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(b, ho * wo, cin * kh * kw)  # (B, Ho*Wo, Cin*k*k)
    y = cols @ weight.reshape(cout, -1).T  # (B, Ho*Wo, Cout)
    y = batchnorm(y, layer, axis=-1)
    if activation:
        y = hardswish(y)
    return np.ascontiguousarray(y.transpose(0, 2, 1).reshape(b, cout, ho, wo))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum, along `axis`. Any shape."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray, scale: float,
              activation: bool = True) -> np.ndarray:
    """softmax(q k^T * scale + bias) v per head, heads concatenated, then Hardswish (LeViT's attention activation).

    q (B, h, Nq, kd), k (B, h, Nk, kd), v (B, h, Nk, d), bias (h, Nq, Nk) -> (B, Nq, h*d)
    """
    logits = (q @ k.transpose(0, 1, 3, 2)) * q.dtype.type(scale) + bias  # (B, h, Nq, Nk)
    out = softmax(logits, axis=-1) @ v  # (B, h, Nq, d)
    b, h, nq, d = out.shape
    out = out.transpose(0, 2, 1, 3).reshape(b, nq, h * d)  # head-major channels, as the official reshape
    return hardswish(out) if activation else out


def bn_linear(x: np.ndarray, layer: dict) -> np.ndarray:
    """A classifier head: BatchNorm1d, then Linear with bias. (B, C) -> (B, classes)"""
    return batchnorm(x, layer, axis=-1) @ layer["weight"].T + layer["bias"]


def classifier(x: np.ndarray, layer: dict) -> np.ndarray:
    """The distilled model's eval output: the mean of the class head and the distillation head. (B, C) -> (B, classes)

    `layer` holds both heads: {"head": ..., "head_dist": ...}, each BatchNorm1d then Linear with bias.
    """
    return (bn_linear(x, layer["head"]) + bn_linear(x, layer["head_dist"])) / np.float32(2)


def run_batch(run, x: np.ndarray) -> np.ndarray:
    """run(x) for a whole forward pass `run`: the reference runs every batch whole (NumPy's BLAS threads within)."""
    return run(x)


def prepare(cfg, params: dict) -> dict:
    """The reference path uses the checkpoint's tensors as they are, grouped by layer; nothing is folded.
    Tensors stay float64 if given so (the float64 yardstick), else become float32.

    Adds, per attention block, `<block>.scale` = kd^-0.5 (the factor `attention` applies to q k^T) and
    `<block>.bias`, its bias table gathered per grid in the (h, Nq, Nk) layout `attention` takes; and
    `classifier`, the two heads together.
    """
    from levit_np.model.attention_bias import GridBias
    from levit_np.model.config import blocks
    from levit_np.model.params import group_layers

    arrays = {name: np.ascontiguousarray(value, dtype=np.float64 if value.dtype == np.float64 else np.float32)
              for name, value in params.items()}
    layers = group_layers(cfg, arrays)
    for block in blocks(cfg):
        if block.kind.has_attention:
            layers[f"{block.name}.scale"] = float(block.key_dim) ** -0.5
            layers[f"{block.name}.bias"] = GridBias(layers.get(f"{block.name}.attention_biases"), block.num_heads,
                                                    block.bias_stride)
    layers["classifier"] = {"head": layers.pop("head"), "head_dist": layers.pop("head_dist")}
    return layers
