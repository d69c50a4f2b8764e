"""Checkpoint layouts: how the official release, timm and Hugging Face name each canonical tensor.

Each layout is a table {canonical name: source key} generated from the config, never a chain of string
replacements. The three layouts hold the same tensors (the official one adds `attention_bias_idxs`, which
is derived data, and all three carry BatchNorm's `num_batches_tracked` counters, which inference ignores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .config import Block, LevitConfig, blocks
from .params import BN_LEAVES, block_layers


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    marker: str  # a key prefix only this layout has: used to detect it
    key_map: Callable[[LevitConfig], dict[str, str]]
    ignored_suffixes: tuple[str, ...]  # source keys with these endings are read but not needed


def _layer_keys(out: dict, canonical: str, source: str, linear: str, bn: str) -> None:
    """A conv/linear + BN pair: `<source>.<linear>.weight` and `<source>.<bn>.*`."""
    out[f"{canonical}.weight"] = f"{source}.{linear}.weight"
    for leaf in BN_LEAVES:
        out[f"{canonical}.{leaf}"] = f"{source}.{bn}.{leaf[3:]}"


def _head_keys(out: dict, canonical: str, source: str, bn: str, linear: str) -> None:
    for leaf in BN_LEAVES:
        out[f"{canonical}.{leaf}"] = f"{source}.{bn}.{leaf[3:]}"
    out[f"{canonical}.weight"] = f"{source}.{linear}.weight"
    out[f"{canonical}.bias"] = f"{source}.{linear}.bias"


def official_keys(cfg: LevitConfig) -> dict[str, str]:
    """facebookresearch/LeViT levit.py: `patch_embed.{0,2,4,6}.c`, one flat `blocks.{i}` Sequential.

    Residual blocks wrap their module in `.m`; the shrink attention is not residual, so it has no `.m`.
    Its query path is Sequential(Subsample, Linear_BN), hence `q.1`; every proj is Sequential(act, Linear_BN).
    """
    out: dict[str, str] = {}
    for i in range(4):
        _layer_keys(out, f"stem.conv{i + 1}", f"patch_embed.{2 * i}", "c", "bn")
    for index, block in enumerate(blocks(cfg)):
        src = f"blocks.{index}"
        if block.kind == "attn":
            out[f"{block.name}.attention_biases"] = f"{src}.m.attention_biases"
            _layer_keys(out, f"{block.name}.qkv", f"{src}.m.qkv", "c", "bn")
            _layer_keys(out, f"{block.name}.proj", f"{src}.m.proj.1", "c", "bn")
        elif block.kind == "down":
            out[f"{block.name}.attention_biases"] = f"{src}.attention_biases"
            _layer_keys(out, f"{block.name}.kv", f"{src}.kv", "c", "bn")
            _layer_keys(out, f"{block.name}.q", f"{src}.q.1", "c", "bn")
            _layer_keys(out, f"{block.name}.proj", f"{src}.proj.1", "c", "bn")
        else:
            _layer_keys(out, f"{block.name}.fc1", f"{src}.m.0", "c", "bn")
            _layer_keys(out, f"{block.name}.fc2", f"{src}.m.2", "c", "bn")
    _head_keys(out, "head", "head", "bn", "l")
    _head_keys(out, "head_dist", "head_dist", "bn", "l")
    return out


def timm_keys(cfg: LevitConfig) -> dict[str, str]:
    """timm >= 0.8 `levit_*`: `stem.conv{1..4}`, `stages.{s}.blocks.{j}.{attn,mlp}`, shrink pair in `downsample`."""
    out: dict[str, str] = {}
    for i in range(4):
        _layer_keys(out, f"stem.conv{i + 1}", f"stem.conv{i + 1}", "linear", "bn")
    for block in blocks(cfg):
        if block.kind == "attn":
            out[f"{block.name}.attention_biases"] = f"{block.name}.attention_biases"
            _layer_keys(out, f"{block.name}.qkv", f"{block.name}.qkv", "linear", "bn")
            _layer_keys(out, f"{block.name}.proj", f"{block.name}.proj.ln", "linear", "bn")
        elif block.kind == "down":
            src = block.name.replace(".attn", ".attn_downsample")
            out[f"{block.name}.attention_biases"] = f"{src}.attention_biases"
            _layer_keys(out, f"{block.name}.kv", f"{src}.kv", "linear", "bn")
            _layer_keys(out, f"{block.name}.q", f"{src}.q.ln", "linear", "bn")
            _layer_keys(out, f"{block.name}.proj", f"{src}.proj.ln", "linear", "bn")
        else:
            _layer_keys(out, f"{block.name}.fc1", f"{block.name}.ln1", "linear", "bn")
            _layer_keys(out, f"{block.name}.fc2", f"{block.name}.ln2", "linear", "bn")
    _head_keys(out, "head", "head", "bn", "linear")
    _head_keys(out, "head_dist", "head_dist", "bn", "linear")
    return out


def _hf_layer_index(cfg: LevitConfig) -> dict[str, tuple[int, int]]:
    """Block name -> (HF stage, layer index). HF closes stage s with the shrink pair that opens ours s+1."""
    index: dict[str, tuple[int, int]] = {}
    counters = [0] * cfg.num_stages
    for block in blocks(cfg):
        stage = block.stage - 1 if ".downsample." in block.name else block.stage
        index[block.name] = (stage, counters[stage])
        counters[stage] += 1
    return index


def hf_keys(cfg: LevitConfig) -> dict[str, str]:
    """transformers `LevitForImageClassificationWithTeacher`: `levit.patch_embeddings`, `levit.encoder.stages`."""
    out: dict[str, str] = {}
    for i in range(4):
        _layer_keys(out, f"stem.conv{i + 1}", f"levit.patch_embeddings.embedding_layer_{i + 1}",
                    "convolution", "batch_norm")
    for name, (stage, layer) in _hf_layer_index(cfg).items():
        src = f"levit.encoder.stages.{stage}.layers.{layer}"
        block = _block_named(cfg, name)
        if block.kind == "attn":
            out[f"{name}.attention_biases"] = f"{src}.module.attention_biases"
            _layer_keys(out, f"{name}.qkv", f"{src}.module.queries_keys_values", "linear", "batch_norm")
            _layer_keys(out, f"{name}.proj", f"{src}.module.projection", "linear", "batch_norm")
        elif block.kind == "down":
            out[f"{name}.attention_biases"] = f"{src}.attention_biases"
            _layer_keys(out, f"{name}.kv", f"{src}.keys_values", "linear", "batch_norm")
            _layer_keys(out, f"{name}.q", f"{src}.queries", "linear", "batch_norm")
            _layer_keys(out, f"{name}.proj", f"{src}.projection", "linear", "batch_norm")
        else:
            _layer_keys(out, f"{name}.fc1", f"{src}.module.linear_up", "linear", "batch_norm")
            _layer_keys(out, f"{name}.fc2", f"{src}.module.linear_down", "linear", "batch_norm")
    _head_keys(out, "head", "classifier", "batch_norm", "linear")
    _head_keys(out, "head_dist", "classifier_distill", "batch_norm", "linear")
    return out


def _block_named(cfg: LevitConfig, name: str) -> Block:
    return next(block for block in blocks(cfg) if block.name == name)


LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout("official", "facebookresearch/LeViT release file", "patch_embed.0.c.weight", official_keys,
               (".attention_bias_idxs", ".num_batches_tracked")),
        Layout("timm", "timm levit_* state dict", "stem.conv1.linear.weight", timm_keys,
               (".num_batches_tracked",)),
        Layout("hf", "Hugging Face transformers LeViT", "levit.patch_embeddings.embedding_layer_1.convolution.weight",
               hf_keys, (".num_batches_tracked",)),
    )
}


def detect_layout(keys) -> Layout:
    """The layout whose marker key is present. Raises ValueError listing what each layout looks for."""
    keys = set(keys)
    for layout in LAYOUTS.values():
        if layout.marker in keys:
            return layout
    wanted = ", ".join(f"{layout.name} ({layout.marker})" for layout in LAYOUTS.values())
    raise ValueError(f"not a known LeViT checkpoint layout: none of these keys is present: {wanted}")


def official_bias_index_keys(cfg: LevitConfig) -> dict[str, Block]:
    """Official `attention_bias_idxs` keys -> the block they index, so conversion can check them."""
    out = {}
    for index, block in enumerate(blocks(cfg)):
        if block.kind == "attn":
            out[f"blocks.{index}.m.attention_bias_idxs"] = block
        elif block.kind == "down":
            out[f"blocks.{index}.attention_bias_idxs"] = block
    return out
