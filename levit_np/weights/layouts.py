"""Checkpoint layouts: how the official release, timm and Hugging Face name each canonical tensor.

Each layout is a table {canonical name: source key} generated from the config, never a chain of string
replacements. The three layouts hold the same tensors (the official one adds `attention_bias_idxs`, which
is derived data, and all three carry BatchNorm's `num_batches_tracked` counters, which inference ignores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from levit_np.model.config import Block, BlockKind, LevitConfig, blocks, stem_convs
from levit_np.model.params import BN_LEAVES, block_layers


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    marker: str  # a key prefix only this layout has: used to detect it
    key_map: Callable[[LevitConfig], dict[str, str]]
    ignored_suffixes: tuple[str, ...]  # source keys with these endings are read but not needed


@dataclass(frozen=True)
class Naming:
    """How one layout names things; `map_keys` turns it into the full table for a config."""

    stem: str  # source prefix of stem conv i (1-based), with {i} and {j} = 2*(i-1) available
    stem_conv: str  # the name of the conv inside a stem conv+BN pair
    block: Callable[[LevitConfig, Block, int], str]  # (cfg, block, flat index) -> source prefix
    parts: dict[str, dict[str, str]]  # block kind -> {canonical part: source part}; "" = the block itself
    linear: str  # the name of a conv/linear inside a conv/linear+BN pair
    bn: str  # the name of its BatchNorm
    heads: tuple[str, str]  # source prefixes of head and head_dist
    head_linear: str


def _layer_keys(out: dict, canonical: str, source: str, naming: Naming, linear: str) -> None:
    """A conv/linear without bias (`<source>.<linear>.weight`) and its BatchNorm (`<source>.<bn>.*`)."""
    out[f"{canonical}.weight"] = f"{source}.{linear}.weight"
    for leaf in BN_LEAVES:
        out[f"{canonical}.{leaf}"] = f"{source}.{naming.bn}.{leaf[3:]}"


def map_keys(cfg: LevitConfig, naming: Naming) -> dict[str, str]:
    """{canonical name: source key} for every tensor, in canonical (checkpoint) order."""
    out: dict[str, str] = {}
    for i, conv in enumerate(stem_convs(cfg), 1):
        _layer_keys(out, conv.name, naming.stem.format(i=i, j=2 * (i - 1)), naming, naming.stem_conv)
    for index, block in enumerate(blocks(cfg)):
        src = naming.block(cfg, block, index)
        parts = naming.parts[block.kind]
        if "attention_biases" in parts:
            out[f"{block.name}.attention_biases"] = _join(src, parts["attention_biases"], "attention_biases")
        for part in block_layers(block):
            _layer_keys(out, f"{block.name}.{part}", _join(src, parts[part]), naming, naming.linear)
    for canonical, source in zip(("head", "head_dist"), naming.heads):  # BatchNorm, then a linear with bias
        for leaf in BN_LEAVES:
            out[f"{canonical}.{leaf}"] = f"{source}.{naming.bn}.{leaf[3:]}"
        out[f"{canonical}.weight"] = f"{source}.{naming.head_linear}.weight"
        out[f"{canonical}.bias"] = f"{source}.{naming.head_linear}.bias"
    return out


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


# facebookresearch/LeViT levit.py: `patch_embed.{0,2,4,6}.c`, one flat `blocks.{i}` Sequential. Residual blocks wrap
# their module in `.m`; the shrink attention is not residual, so it has none. Its query path is
# Sequential(Subsample, Linear_BN), hence `q.1`; every proj is Sequential(Hardswish, Linear_BN), hence `proj.1`.
OFFICIAL = Naming(
    stem="patch_embed.{j}", stem_conv="c",
    block=lambda cfg, block, index: f"blocks.{index}",
    parts={"attn": {"attention_biases": "m", "qkv": "m.qkv", "proj": "m.proj.1"},
           "down": {"attention_biases": "", "kv": "kv", "q": "q.1", "proj": "proj.1"},
           "mlp": {"fc1": "m.0", "fc2": "m.2"}},
    linear="c", bn="bn", heads=("head", "head_dist"), head_linear="l",
)

# timm >= 0.8 `levit_*`: `stem.conv{1..4}`, `stages.{s}.blocks.{j}.{attn,mlp}`; the shrink pair opens a stage as
# `stages.{s}.downsample.{attn_downsample,mlp}` (our names, but for `attn_downsample`).
TIMM = Naming(
    stem="stem.conv{i}", stem_conv="linear",
    block=lambda cfg, block, index: block.name.replace("downsample.attn", "downsample.attn_downsample"),
    parts={"attn": {"attention_biases": "", "qkv": "qkv", "proj": "proj.ln"},
           "down": {"attention_biases": "", "kv": "kv", "q": "q.ln", "proj": "proj.ln"},
           "mlp": {"fc1": "ln1", "fc2": "ln2"}},
    linear="linear", bn="bn", heads=("head", "head_dist"), head_linear="linear",
)


def _hf_layer_index(cfg: LevitConfig) -> dict[str, tuple[int, int]]:
    """Block name -> (HF stage, layer index). HF closes stage s with the shrink pair that opens ours s+1."""
    index: dict[str, tuple[int, int]] = {}
    counters = [0] * cfg.num_stages
    for block in blocks(cfg):
        stage = block.stage - 1 if ".downsample." in block.name else block.stage
        index[block.name] = (stage, counters[stage])
        counters[stage] += 1
    return index


def _hf_block(cfg: LevitConfig, block: Block, index: int) -> str:
    stage, layer = _hf_layer_index(cfg)[block.name]
    return f"levit.encoder.stages.{stage}.layers.{layer}"


# transformers `LevitForImageClassificationWithTeacher`: residual layers wrap their module in `.module`; the
# shrink attention (not residual) has none.
HF = Naming(
    stem="levit.patch_embeddings.embedding_layer_{i}", stem_conv="convolution",
    block=_hf_block,
    parts={"attn": {"attention_biases": "module", "qkv": "module.queries_keys_values", "proj": "module.projection"},
           "down": {"attention_biases": "", "kv": "keys_values", "q": "queries", "proj": "projection"},
           "mlp": {"fc1": "module.linear_up", "fc2": "module.linear_down"}},
    linear="linear", bn="batch_norm", heads=("classifier", "classifier_distill"), head_linear="linear",
)


def official_keys(cfg: LevitConfig) -> dict[str, str]:
    return map_keys(cfg, OFFICIAL)


def timm_keys(cfg: LevitConfig) -> dict[str, str]:
    return map_keys(cfg, TIMM)


def hf_keys(cfg: LevitConfig) -> dict[str, str]:
    return map_keys(cfg, HF)


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
        if block.kind is BlockKind.ATTENTION:
            out[f"blocks.{index}.m.attention_bias_idxs"] = block
        elif block.kind is BlockKind.SHRINK:
            out[f"blocks.{index}.attention_bias_idxs"] = block
    return out
