"""Multiply-adds and parameters of a LeViT model, per layer, block and stage, computed from its config.

The convention is the official counter's (levit-spec §1.6), which the paper calls FLOPs:
    conv          cin * cout * out_points * k^2
    linear        a * b * tokens                       (the shrink block's q linear sees the subsampled tokens)
    attention     h * Nq * Nk * kd  (Q K^T)  +  h * Nq * Nk  (softmax, one per element)  +  h * Nq * Nk * d  (A V)
    heads         C * classes each, both heads
BatchNorm, LayerNorm, Hardswish, bias and residual adds, the position embedding and the mean-pool count zero.
Parameters are the learned tensors (BatchNorm running statistics excluded), read from `params.param_shapes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from levit_np.model.config import BlockKind, LevitConfig, blocks, stem_convs
from levit_np.model.grid import subsampled_side
from levit_np.model.params import is_learned, param_shapes

# The official counter's totals at 224x224 (levit-spec §1.6; issue 5): external reference values.
OFFICIAL_FLOPS = {"levit_128s": 305_108_946, "levit_128": 406_114_880, "levit_192": 657_601_916,
                  "levit_256": 1_128_024_056, "levit_384": 2_352_935_380}
OFFICIAL_PARAMS = {"levit_128s": 7_777_058, "levit_128": 9_213_936, "levit_192": 10_947_069,
                   "levit_256": 18_893_876, "levit_384": 39_128_836}

PARTS = ("stem", "attn_linear", "attn_matmul", "shrink", "mlp", "head")


@dataclass(frozen=True)
class Cost:
    """One counted piece of the model: a conv or linear layer, an attention product, or a norm/embedding."""

    name: str  # layer prefix, e.g. "stem.conv1", "stages.0.blocks.0.attn.qkv", "stages.0.blocks.0.attn.matmul"
    block: str  # the trace-hook name it belongs to: "stem", a block name, or "logits"
    stage: str  # "stem", "stage 0", "stage 1", ... or "head"
    part: str  # one of PARTS
    macs: int
    params: int


def learned_by_prefix(shapes: dict) -> dict[str, int]:
    """Learned parameters under every dotted prefix of the tensor names (BN running statistics excluded):
    {"stem.conv1": ..., "stem": ..., ...}. One pass over the names, so a lookup per layer stays cheap."""
    totals: dict[str, int] = {}
    for name, shape in shapes.items():
        if not is_learned(name):
            continue
        size = math.prod(shape)
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            totals[prefix] = totals.get(prefix, 0) + size
    return totals


def costs(cfg: LevitConfig) -> list[Cost]:
    """Every counted piece of the model, in forward order; the MACs and params sum to the model's totals."""
    shapes = param_shapes(cfg)
    learned = learned_by_prefix(shapes)
    out: list[Cost] = []
    side = cfg.img_size
    for conv in stem_convs(cfg):
        side = (side + 2 * conv.padding - conv.kernel) // conv.stride + 1
        macs = conv.cin * conv.cout * side * side * conv.kernel ** 2
        out.append(Cost(conv.name, "stem", "stem", "stem", macs, learned.get(conv.name, 0)))
    if "pos_embed" in shapes:
        out.append(Cost("pos_embed", "stem", "stem", "stem", 0, learned.get("pos_embed", 0)))
    for block in blocks(cfg):
        stage = f"stage {block.stage}"
        n_k = block.resolution ** 2
        h, kd, d = block.num_heads, block.key_dim, block.value_dim

        def add(sub: str, part: str, macs: int, params_prefix: str | None = None) -> None:
            prefix = f"{block.name}.{sub}"
            out.append(Cost(prefix, block.name, stage, part, macs, learned.get(params_prefix or prefix, 0)))

        if cfg.norm == "ln":
            add("norm", {BlockKind.ATTENTION: "attn_linear", BlockKind.SHRINK: "shrink"}.get(block.kind, "mlp"), 0)
        if block.kind is BlockKind.ATTENTION:
            add("qkv", "attn_linear", n_k * block.dim_in * h * (2 * kd + d))
            add("matmul", "attn_matmul", h * n_k * n_k * (kd + 1 + d), f"{block.name}.attention_biases")
            add("proj", "attn_linear", n_k * h * d * block.dim_out)
        elif block.kind is BlockKind.SHRINK:
            n_q = subsampled_side(block.resolution) ** 2
            add("kv", "shrink", n_k * block.dim_in * h * (kd + d))
            add("q", "shrink", n_q * block.dim_in * h * kd)
            add("matmul", "shrink", h * n_q * n_k * (kd + 1 + d), f"{block.name}.attention_biases")
            add("proj", "shrink", n_q * h * d * block.dim_out)
        else:
            add("fc1", "mlp", n_k * block.dim_in * block.hidden_dim)
            add("fc2", "mlp", n_k * block.hidden_dim * block.dim_out)
    for head in ("head", "head_dist"):
        out.append(Cost(head, "logits", "head", "head", cfg.embed_dims[-1] * cfg.num_classes, learned.get(head, 0)))
    return out


def total_flops(cfg: LevitConfig) -> int:
    """The model's multiply-adds per image (the official counter's "FLOPs")."""
    return sum(c.macs for c in costs(cfg))


def by_key(items: list[Cost], key: str) -> dict[str, dict[str, int]]:
    """Sum MACs and params over `key` ("block", "stage" or "part"), in first-seen order."""
    summary: dict[str, dict[str, int]] = {}
    for c in items:
        entry = summary.setdefault(getattr(c, key), {"macs": 0, "params": 0})
        entry["macs"] += c.macs
        entry["params"] += c.params
    return summary


def block_macs(cfg: LevitConfig) -> dict[str, int]:
    """MACs of every trace-hook name ('stem', each block, 'pool', 'logits'), in forward order."""
    per_block = {name: v["macs"] for name, v in by_key(costs(cfg), "block").items()}
    logits = per_block.pop("logits")
    return {**per_block, "pool": 0, "logits": logits}


def summary(cfg: LevitConfig) -> dict:
    """Everything `levit flops` prints: totals, per stage, per block, per part and per layer."""
    items = costs(cfg)
    return {
        "model": cfg.name,
        "params": sum(c.params for c in items),
        "flops": sum(c.macs for c in items),
        "official_flops": OFFICIAL_FLOPS.get(cfg.name),
        "official_params": OFFICIAL_PARAMS.get(cfg.name),
        "stages": by_key(items, "stage"),
        "blocks": by_key(items, "block"),
        "parts": by_key(items, "part"),
        "layers": [{"name": c.name, "block": c.block, "stage": c.stage, "part": c.part, "macs": c.macs,
                    "params": c.params} for c in items],
    }
