"""`levit profile --blocks`: the paper's block-timing table (supplementary Table 1), measured on this CPU.

Two blocks at 14x14 tokens, batch 1: a DeiT-tiny block (deit.py) and a LeViT-256 stage-1 block (attention +
MLP, BatchNorm folded into the linears as the paper's timed models were). The whole block runs many times; each
piece (block_ops.ROWS) is timed where it runs, on the real intermediate values, and so is the whole run ("total");
every figure is a median over the runs, with the interquartile range as its spread.
The backends table times the same LeViT block through each backend's own kernels (the forward pass's kernel namespace),
at the granularity those kernels have: one qkv product, one fused attention, proj, MLP.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

from levit_np.model.attention_bias import gather_bias
from levit_np.perf.block_ops import ROWS, attention_mix, attention_scores, mlp_residual, projection_residual, run_direct
from levit_np.model.config import get_config
from levit_np.kernels.fold import fold_bn_after, query_rows
from levit_np.kernels.reference import linear
from levit_np.perf.timing import StepTimer, median_iqr

# Paper, supplementary Table 1: Intel Xeon E5-2698, one core, batch 1, microseconds.
PAPER_US = {
    "deit_tiny": {"layernorm": 49, "keys_qk": 299, "values_v": 172, "product_qkt": 228, "product_av": 161,
                  "attention_projection": 175, "mlp": 1390, "total": 2474},
    "levit_256": {"keys_qk": 275, "values_v": 275, "product_qkt": 159, "product_av": 206,
                  "attention_projection": 310, "mlp": 1140, "total": 2365},
}
# Where the pieces without a row of their own are timed (the paper's table does not say).
COUNTED_IN = {"softmax": "product_qkt", "scale and attention bias": "product_qkt",
              "attention Hardswish (LeViT)": "attention_projection", "MLP Hardswish": "mlp",
              "residual adds": "attention_projection and mlp", "LeViT BatchNorm": "folded into the linears"}
BACKEND_ROWS = ("keys_qk+values_v", "product_qkt+product_av", "attention_projection", "mlp", "total")

LEVIT_VARIANT = "levit_256"
LEVIT_ATTN, LEVIT_MLP = "stages.0.blocks.0.attn", "stages.0.blocks.0.mlp"


def row_macs(tokens: int, dim: int, heads: int, key_dim: int, value_dim: int, mlp_ratio: int,
             layernorm: bool) -> dict[str, int]:
    """Multiply-adds of each row (softmax and LayerNorm have no products). -> {row: MACs, 'total': sum}"""
    n, c, hd = tokens, dim, heads * value_dim
    macs = {"layernorm": 0} if layernorm else {}
    macs |= {"keys_qk": n * c * 2 * heads * key_dim, "values_v": n * c * hd,
            "product_qkt": heads * n * n * key_dim, "product_av": heads * n * n * value_dim,
            "attention_projection": n * hd * c, "mlp": 2 * n * c * mlp_ratio * c}
    return {**macs, "total": sum(macs.values())}


def levit_block_layers(params: dict[str, np.ndarray]) -> dict:
    """The LeViT-256 stage-1 block's layers, BN folded, qkv split into [q all heads | k all heads] and V rows."""
    from levit_np.model.params import group_layers

    cfg = get_config(LEVIT_VARIANT)
    grouped = group_layers(cfg, params)
    heads, kd = cfg.num_heads[0], cfg.key_dim
    d = cfg.attn_ratio * kd
    qkv = fold_bn_after(grouped[f"{LEVIT_ATTN}.qkv"])
    q_rows = query_rows(heads, 2 * kd + d, kd)  # head-interleaved rows: [q | k | v] per head
    k_rows, v_rows = q_rows + kd, query_rows(heads, 2 * kd + d, d) + 2 * kd

    def rows(index: np.ndarray) -> dict:
        return {key: np.ascontiguousarray(value[index]) for key, value in qkv.items()}

    side = cfg.resolutions[0]
    bias = gather_bias(grouped[f"{LEVIT_ATTN}.attention_biases"], (side, side), (side, side))
    return {"qk": rows(np.concatenate([q_rows, k_rows])), "v": rows(v_rows),
            "bias": np.ascontiguousarray(bias, dtype=np.float32), "proj": fold_bn_after(grouped[f"{LEVIT_ATTN}.proj"]),
            "fc1": fold_bn_after(grouped[f"{LEVIT_MLP}.fc1"]), "fc2": fold_bn_after(grouped[f"{LEVIT_MLP}.fc2"])}


def levit_block(x: np.ndarray, layers: dict, num_heads: int = 4, step=run_direct) -> np.ndarray:
    """LeViT-256 stage-1 attention + MLP (residual, BN folded), each piece run through `step`. (B, N, C) -> (B, N, C)"""
    qk = step("keys_qk", linear, x, layers["qk"])
    v = step("values_v", linear, x, layers["v"])
    attn = step("product_qkt", attention_scores, qk, num_heads, layers["bias"])
    out = step("product_av", attention_mix, attn, v)
    x = step("attention_projection", projection_residual, x, out, layers["proj"], True)
    return step("mlp", mlp_residual, x, x, layers["fc1"], layers["fc2"])


def profile_split_block(block: Callable, args: tuple, repeats: int, warmup: int = 3) -> dict[str, tuple[float, float]]:
    """Run `block(*args, step)` many times, timing each row in place and the whole run.

    -> {row: (median_us, spread_us), ..., 'total': (median_us, spread_us)}; the rows' medians add up to
    about the total's (the rest is the untimed glue: reshapes, the LeViT residual adds of the backends table).
    """
    timer = StepTimer()
    for _ in range(warmup):
        block(*args, step=timer)
    runs = []
    for _ in range(repeats):
        timer.run = {}
        start = time.perf_counter()
        block(*args, step=timer)
        runs.append({**timer.run, "total": time.perf_counter() - start})
    return {row: tuple(v * 1e6 for v in median_iqr([run[row] for run in runs])) for row in runs[0]}


def backend_block(backend: str, params: dict) -> Callable:
    """The LeViT-256 stage-1 block through backend `backend`'s kernels, as the forward pass runs it, one step per kernel.

    -> block(x, step) with rows BACKEND_ROWS[:-1]. (B, N, C) -> (B, N, C)
    """
    from levit_np.model.config import blocks
    from levit_np.levit_model import LevitModel
    from levit_np.model.forward import mlp_block

    cfg = get_config(LEVIT_VARIANT)
    model = LevitModel(cfg, params, backend)
    k, layers = model.kernels, model.layers
    attn, mlp = [block for block in blocks(cfg) if block.name in (LEVIT_ATTN, LEVIT_MLP)]
    grid = (cfg.resolutions[0],) * 2
    bias = model.bias_for(attn, grid, grid)
    h, kd = attn.num_heads, attn.key_dim

    def block(x: np.ndarray, step=run_direct) -> np.ndarray:
        b, n, _ = x.shape
        qkv = step("keys_qk+values_v", k.linear_bn, x, layers[f"{attn.name}.qkv"])
        qkv = qkv.reshape(b, n, h, -1).transpose(0, 2, 1, 3)  # (B, h, N, 2kd+d), head-interleaved as in the forward pass
        out = step("product_qkt+product_av", k.attention, qkv[..., :kd], qkv[..., kd:2 * kd], qkv[..., 2 * kd:],
                   bias, layers[f"{attn.name}.scale"])
        x = x + step("attention_projection", k.linear_bn, out, layers[f"{attn.name}.proj"])
        return x + step("mlp", lambda y: mlp_block(y, grid, mlp, layers, k)[0], x)

    return block


def available_backends() -> list[str]:
    """Registered backends that import here ('numpy' always; the Numba one once it lands)."""
    from levit_np.kernels.backends import BACKENDS, get_backend

    names = []
    for name in BACKENDS:
        try:
            get_backend(name)
        except ImportError:
            continue
        names.append(name)
    return names


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def profile_blocks(repeats: int = 200, backends: list[str] | None = None, seed: int = 0) -> dict:
    """Everything `levit profile --blocks` shows, JSON-ready (microseconds)."""
    from levit_np.perf import deit
    from levit_np.model.params import random_params

    # Build everything before timing anything: building the LeViT-256 parameters allocates and frees large
    # arrays, which raises glibc's mmap threshold; a block timed before that pays ~600 page faults a run (its
    # temporaries come from fresh mmaps), one timed after does not. Both blocks are timed in the warm state.
    rng = np.random.default_rng(seed)
    deit_cfg = deit.DEIT_TINY
    deit_x = rng.normal(size=(1, deit_cfg.tokens, deit_cfg.dim)).astype(np.float32)
    deit_layers = deit.prepare(deit.random_params(seed=seed))
    cfg = get_config(LEVIT_VARIANT)
    params = random_params(cfg, seed)
    levit_x = rng.normal(size=(1, cfg.resolutions[0] ** 2, cfg.embed_dims[0])).astype(np.float32)
    levit_layers = levit_block_layers(params)
    kernel_blocks = {name: backend_block(name, params)
                     for name in (backends if backends is not None else available_backends())}
    measured = {"deit_tiny": profile_split_block(deit.deit_block, (deit_x, deit_layers, deit_cfg.num_heads), repeats),
                "levit_256": profile_split_block(levit_block, (levit_x, levit_layers, cfg.num_heads[0]), repeats)}
    backend_rows = {name: profile_split_block(block, (levit_x,), repeats) for name, block in kernel_blocks.items()}
    kd = cfg.key_dim
    return {
        "blocks": {name: {row: rows[row][0] for row in (*ROWS, "total") if row in rows} for name, rows in measured.items()},
        "spread_us": {name: {row: rows[row][1] for row in (*ROWS, "total") if row in rows}
                      for name, rows in measured.items()},
        "sum_of_rows_us": {name: sum(v[0] for row, v in rows.items() if row != "total") for name, rows in measured.items()},
        "macs": {"deit_tiny": row_macs(deit_cfg.tokens, deit_cfg.dim, deit_cfg.num_heads, deit_cfg.dim // deit_cfg.num_heads,
                                       deit_cfg.dim // deit_cfg.num_heads, deit_cfg.mlp_ratio, True),
                 "levit_256": row_macs(levit_x.shape[1], cfg.embed_dims[0], cfg.num_heads[0], kd, cfg.attn_ratio * kd,
                                       cfg.mlp_ratio, False)},
        "paper_us": PAPER_US,
        "counted_in": COUNTED_IN,
        "backends": {name: {row: v[0] for row, v in rows.items()} for name, rows in backend_rows.items()},
        "backend_spread_us": {name: {row: v[1] for row, v in rows.items()} for name, rows in backend_rows.items()},
        "repeats": repeats,
        "batch": 1,
        "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "cpu": cpu_name(),
    }
