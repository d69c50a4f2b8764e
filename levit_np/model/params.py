"""The canonical parameter table of a LeViT model, generated from its config.

Names follow timm's structure with shorter leaves:
    stem.conv{1..4}.weight                       conv (Cout, Cin, 3, 3), then its .bn.*
    stages.{s}.blocks.{j}.attn.qkv / .proj       linear (out, in), then its .bn.*; plus .attn.attention_biases
    stages.{s}.downsample.attn.kv / .q / .proj   the shrink attention; plus .attention_biases
    ....mlp.fc1 / .fc2                           the MLP's two linears
    head.* / head_dist.*                         bn.* then weight (classes, C) and bias (classes,)
Every conv/linear is followed by a BatchNorm stored as `<layer>.bn.{weight,bias,running_mean,running_var}`.
The order is the official state dict's order (which timm and Hugging Face share).
"""

from __future__ import annotations

import numpy as np

from levit_np.model.config import Block, BlockKind, LevitConfig, blocks, stem_convs

BN_LEAVES = ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var")


def _layer(shapes: dict, prefix: str, weight_shape: tuple[int, ...]) -> None:
    """A conv/linear without bias followed by BatchNorm over its output channels."""
    shapes[f"{prefix}.weight"] = weight_shape
    for leaf in BN_LEAVES:
        shapes[f"{prefix}.{leaf}"] = (weight_shape[0],)


def _head(shapes: dict, prefix: str, dim: int, classes: int) -> None:
    """BatchNorm over the pooled features, then a linear with bias."""
    for leaf in BN_LEAVES:
        shapes[f"{prefix}.{leaf}"] = (dim,)
    shapes[f"{prefix}.weight"] = (classes, dim)
    shapes[f"{prefix}.bias"] = (classes,)


def _linear(shapes: dict, prefix: str, weight_shape: tuple[int, ...]) -> None:
    """A linear with bias and no BatchNorm (the LayerNorm ablation A3)."""
    shapes[f"{prefix}.weight"] = weight_shape
    shapes[f"{prefix}.bias"] = (weight_shape[0],)


def block_layers(block: Block) -> dict[str, tuple[int, ...]]:
    """The layers of one block: {sub-name: weight shape}, in checkpoint order."""
    h, kd, d = block.num_heads, block.key_dim, block.value_dim
    if block.kind is BlockKind.ATTENTION:
        return {"qkv": (h * (2 * kd + d), block.dim_in), "proj": (block.dim_out, h * d)}
    if block.kind is BlockKind.SHRINK:
        return {"kv": (h * (kd + d), block.dim_in), "q": (h * kd, block.dim_in), "proj": (block.dim_out, h * d)}
    return {"fc1": (block.hidden_dim, block.dim_in), "fc2": (block.dim_out, block.hidden_dim)}


def param_shapes(cfg: LevitConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of the model, name -> shape, in checkpoint order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for conv in stem_convs(cfg):
        _layer(shapes, conv.name, (conv.cout, conv.cin, conv.kernel, conv.kernel))
    if cfg.position == "absolute":
        shapes["pos_embed"] = (1, cfg.resolutions[0] ** 2, cfg.embed_dims[0])
    add_layer = _linear if cfg.norm == "ln" else _layer
    for block in blocks(cfg):
        if cfg.norm == "ln":
            shapes[f"{block.name}.norm.weight"] = shapes[f"{block.name}.norm.bias"] = (block.dim_in,)
        if block.kind.has_attention and cfg.position == "bias":
            shapes[f"{block.name}.attention_biases"] = (block.num_heads, block.resolution ** 2)
        for sub, shape in block_layers(block).items():
            add_layer(shapes, f"{block.name}.{sub}", shape)
    _head(shapes, "head", cfg.embed_dims[-1], cfg.num_classes)
    _head(shapes, "head_dist", cfg.embed_dims[-1], cfg.num_classes)
    return shapes


def layer_names(cfg: LevitConfig) -> list[str]:
    """Prefixes of every layer (conv/linear + BN, and the two heads), in order."""
    names = [conv.name for conv in stem_convs(cfg)]
    for block in blocks(cfg):
        names += [f"{block.name}.norm"] if cfg.norm == "ln" else []
        names += [f"{block.name}.{sub}" for sub in block_layers(block)]
    return names + ["head", "head_dist"]


def group_layers(cfg: LevitConfig, params: dict[str, np.ndarray]) -> dict:
    """{layer prefix: {leaf: array}} for every layer, plus the attention-bias tables under their own names."""
    grouped: dict = {prefix: {} for prefix in layer_names(cfg)}
    for name, value in params.items():  # a leaf is one to three name parts below its layer's prefix
        parts = name.split(".")
        for depth in (1, 2, 3):
            prefix = ".".join(parts[:-depth])
            if prefix in grouped:
                grouped[prefix][".".join(parts[-depth:])] = value
    for name, value in params.items():
        if name.endswith(".attention_biases") or name == "pos_embed":
            grouped[name] = value
    return grouped


def is_learned(name: str) -> bool:
    """Whether a canonical tensor is a learned parameter: all but BatchNorm's running statistics."""
    return not name.endswith(("running_mean", "running_var"))


def count_params(cfg: LevitConfig) -> int:
    """Learned parameters, as the paper counts them: BN running statistics excluded, both heads included."""
    return sum(int(np.prod(shape)) for name, shape in param_shapes(cfg).items() if is_learned(name))


def random_params(cfg: LevitConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights that exercise every branch: random BN statistics and non-zero attention biases.

    (A default init zeroes some BN gammas and every attention bias, which would hide whole branches.)
    Weights N(0, 1/fan_in), BN gamma U(0.5, 1.5), beta N(0, 0.1^2), mean N(0, 0.2^2), var U(0.5, 2),
    head bias N(0, 0.1^2), attention biases N(0, 1.5^2) -- the recipe of the shared official fixture.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("attention_biases"):
            value = rng.normal(0, 1.5, shape)
        elif name.endswith(("bn.weight", "norm.weight")):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("bn.running_var"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("bn.running_mean"):
            value = rng.normal(0, 0.2, shape)
        elif name.endswith("bias"):
            value = rng.normal(0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0, 1 / np.sqrt(fan_in), shape)
        params[name] = value.astype(np.float32)
    return params
