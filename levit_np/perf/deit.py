"""One DeiT-tiny transformer block in NumPy, as the paper times it (supplementary Table 1).

DeiT-tiny: C = 192, 3 heads of 64, 197 tokens (14x14 patches + the class token), pre-LayerNorm, MLP ratio 4.
The paper replaces GELU by Hardswish "as otherwise it dominates the runtime"; so does this block.
    x = x + proj(attention(LN1(x)))
    x = x + fc2(Hardswish(fc1(LN2(x))))
Parameters use timm's names (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`); the qkv weight
is one (3C, C) matrix, [q | k | v] with heads major inside each. The block computes Q,K and V as two products
(the paper's rows "Keys Q,K" and "Values V"), which gives the same numbers as one qkv product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from levit_np.perf.block_ops import attention_mix, attention_scores, mlp_residual, projection_residual, run_direct
from levit_np.kernels.reference import layernorm, linear


@dataclass(frozen=True)
class DeitBlockConfig:
    dim: int = 192  # C
    num_heads: int = 3  # 3 heads of C / 3 = 64
    tokens: int = 197  # 14 * 14 patches + the class token
    mlp_ratio: int = 4


DEIT_TINY = DeitBlockConfig()


def param_shapes(cfg: DeitBlockConfig = DEIT_TINY) -> dict[str, tuple[int, ...]]:
    """Every tensor of one block, timm's names."""
    c, hidden = cfg.dim, cfg.mlp_ratio * cfg.dim
    return {
        "norm1.weight": (c,), "norm1.bias": (c,),
        "attn.qkv.weight": (3 * c, c), "attn.qkv.bias": (3 * c,),
        "attn.proj.weight": (c, c), "attn.proj.bias": (c,),
        "norm2.weight": (c,), "norm2.bias": (c,),
        "mlp.fc1.weight": (hidden, c), "mlp.fc1.bias": (hidden,),
        "mlp.fc2.weight": (c, hidden), "mlp.fc2.bias": (c,),
    }


def random_params(cfg: DeitBlockConfig = DEIT_TINY, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights N(0, 1/fan_in), biases N(0, 0.1^2), LayerNorm gamma U(0.5, 1.5): every branch carries signal."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name.startswith("norm") and name.endswith("weight"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("bias"):
            value = rng.normal(0, 0.1, shape)
        else:
            value = rng.normal(0, 1 / np.sqrt(shape[1]), shape)
        params[name] = value.astype(np.float32)
    return params


def prepare(params: dict[str, np.ndarray], cfg: DeitBlockConfig = DEIT_TINY) -> dict[str, dict]:
    """Group the tensors per layer and split qkv into its Q,K rows and its V rows (contiguous copies)."""
    c = cfg.dim

    def layer(prefix: str, rows: slice = slice(None)) -> dict:
        return {"weight": np.ascontiguousarray(params[f"{prefix}.weight"][rows]),
                "bias": np.ascontiguousarray(params[f"{prefix}.bias"][rows])}

    return {"norm1": layer("norm1"), "qk": layer("attn.qkv", slice(0, 2 * c)), "v": layer("attn.qkv", slice(2 * c, None)),
            "proj": layer("attn.proj"), "norm2": layer("norm2"), "fc1": layer("mlp.fc1"), "fc2": layer("mlp.fc2")}


def deit_block(x: np.ndarray, layers: dict, num_heads: int = DEIT_TINY.num_heads, step=run_direct) -> np.ndarray:
    """One pre-norm DeiT block with a Hardswish MLP, each piece run through `step`. (B, N, C) -> (B, N, C)"""
    h = step("layernorm", layernorm, x, layers["norm1"])
    qk = step("keys_qk", linear, h, layers["qk"])
    v = step("values_v", linear, h, layers["v"])
    attn = step("product_qkt", attention_scores, qk, num_heads, None)
    out = step("product_av", attention_mix, attn, v)
    x = step("attention_projection", projection_residual, x, out, layers["proj"], False)
    h = step("layernorm", layernorm, x, layers["norm2"])
    return step("mlp", mlp_residual, x, h, layers["fc1"], layers["fc2"])
