"""The PyTorch reference beside our model: Hugging Face `LevitForImageClassificationWithTeacher` holding our weights.

transformers' LeViT gives logits bitwise equal to the official code (levit-spec.md §7), so `levit trace
--against-torch` uses it as "the official architecture". torch and transformers are optional
(`pip install 'levit-np[reference]'`) and imported only when a function here runs; without them the
functions raise ReferenceUnavailable, a LevitError with the install command.

The weights are our canonical tensors, renamed with the HF layout table (`layouts.hf_keys`). The official
architecture builds its bias index for one square input size: for a square size other than 224 the model is
built at that size and given the tables `attention_bias.resample_table` computes, which checks every other
part of our any-size forward pass; non-square inputs have no PyTorch reference.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings

import numpy as np

from levit_np.model.attention_bias import resample_table
from levit_np.model.config import BlockKind, LevitConfig, blocks
from levit_np.errors import LevitError
from levit_np.model.grid import token_grids

INSTALL = "pip install 'levit-np[reference]'  (torch==2.13.0 CPU and transformers)"


ABLATION_FIELDS = ("stem_kind", "norm", "position", "attn_activation", "down_num_heads")  # LevitConfig switches


class ReferenceUnavailable(LevitError, ImportError):
    """torch or transformers is not installed."""


def require(name: str):
    """Import torch or transformers, or raise ReferenceUnavailable naming the install command."""
    try:
        with warnings.catch_warnings():  # a torchvision built for another torch warns at import; harmless here
            warnings.filterwarnings("ignore", message="Failed to load image Python extension")
            module = importlib.import_module(name)
            if name == "transformers":  # a lazy module: the model classes (and torchvision) load on first access
                getattr(module, "LevitForImageClassificationWithTeacher")
            return module
    except ImportError as e:
        raise ReferenceUnavailable(f"the PyTorch reference needs {name} ({e}); install it with: {INSTALL}") from None


def hf_config(cfg: LevitConfig, image_size: int | None = None):
    """transformers.LevitConfig of our variant (official hyper-parameters), for square inputs of `image_size`."""
    transformers = require("transformers")
    return transformers.LevitConfig(
        image_size=image_size or cfg.img_size, patch_size=cfg.patch_size, num_channels=cfg.in_chans,
        hidden_sizes=list(cfg.embed_dims), num_attention_heads=list(cfg.num_heads), depths=list(cfg.depths),
        key_dim=[cfg.key_dim] * cfg.num_stages, mlp_ratio=[cfg.mlp_ratio] * cfg.num_stages,
        attention_ratio=[cfg.attn_ratio] * cfg.num_stages, num_labels=cfg.num_classes)


def hf_state_dict(cfg: LevitConfig, params: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """Our tensors under HF names; bias tables resampled to each module's key grid at a size x size input."""
    from levit_np.weights.layouts import hf_keys

    grids = token_grids(cfg, size, size)
    tables = {}
    for block in blocks(cfg):
        if block.kind.has_attention:
            rows, cols = grids[block.stage - 1] if block.kind is BlockKind.SHRINK else grids[block.stage]
            tables[f"{block.name}.attention_biases"] = resample_table(params[f"{block.name}.attention_biases"],
                                                                      rows, cols)
    return {key: tables.get(name, params[name]) for name, key in hf_keys(cfg).items()}


def hf_model(cfg: LevitConfig, params: dict[str, np.ndarray], size: tuple[int, int] | None = None):
    """An eval-mode HF LeViT with our weights for (H, W) inputs (square only). Every tensor is checked."""
    torch = require("torch")
    transformers = require("transformers")
    height, width = size or (cfg.img_size, cfg.img_size)
    defaults = {f.name: f.default for f in dataclasses.fields(LevitConfig)}  # the defaults are LeViT's
    changed = {name: getattr(cfg, name) for name in ABLATION_FIELDS if getattr(cfg, name) != defaults[name]}
    if cfg.num_stages != 3:
        changed["num_stages"] = cfg.num_stages
    if changed:
        raise LevitError(f"the PyTorch reference is the official architecture; {cfg.name} changes {changed}")
    if height != width:
        raise LevitError(f"the PyTorch reference (official architecture) runs square inputs only, not {height}x{width}")
    model = transformers.LevitForImageClassificationWithTeacher(hf_config(cfg, height))
    state = {key: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
             for key, value in hf_state_dict(cfg, params, height).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise LevitError(f"HF LeViT does not fit {cfg.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()  # after loading: the eval-mode bias cache is filled on the first call (levit-spec §1.4)


def hf_trace(model, cfg: LevitConfig, x: np.ndarray) -> dict[str, np.ndarray]:
    """The HF model's outputs under our trace names: 'stem', every block, 'pool', 'logits'. (B, 3, H, W) float32"""
    torch = require("torch")
    out: dict[str, np.ndarray] = {}

    def keep(name):
        def hook(module, args, output):
            value = output.pooler_output if name == "pool" else output
            out[name] = value.detach().numpy().astype(np.float32, copy=True)
        return hook

    layers = [layer for stage in model.levit.encoder.stages for layer in stage.layers]
    names = [block.name for block in blocks(cfg)]
    if len(layers) != len(names):
        raise LevitError(f"HF model has {len(layers)} blocks, {cfg.name} has {len(names)}")
    points = [("stem", model.levit.patch_embeddings.embedding_layer_4)] + list(zip(names, layers))
    points.append(("pool", model.levit))
    handles = [module.register_forward_hook(keep(name)) for name, module in points]
    try:
        with torch.no_grad():
            logits = model(pixel_values=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).logits
    finally:
        for handle in handles:
            handle.remove()
    out["logits"] = logits.numpy().astype(np.float32, copy=True)
    return out
