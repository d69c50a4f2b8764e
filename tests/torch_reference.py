"""PyTorch reference models for the tests: Hugging Face and timm LeViT with random weights.

No trained LeViT weights are reachable here, so every check compares against a PyTorch model whose parameters,
BatchNorm statistics and attention biases are all random (the default init zeroes whole branches). This module is
importable without torch: torch, transformers and timm are imported lazily, and the functions that need them raise
`ReferenceUnavailable` (an ImportError) when they are missing. The layout functions also work on NumPy arrays.

Three state-dict layouts hold the same tensors in the same positional order (levit-spec.md §1.9, §2, §3):
official facebookresearch (`patch_embed.0.c.weight`, flat `blocks.{i}`, 336 keys for 128S), timm
(`stem.conv1.linear.weight`, `stages.{s}`) and HF (`levit.patch_embeddings...`). timm and HF lack the 11
`attention_bias_idxs` buffers (non-persistent there). Positional conversion is checked key by key: equal shape and
equal last name component (`weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked`,
`attention_biases`), which also catches a swapped BN weight/bias that a shape check alone would miss.

Eval-mode bias cache (levit-spec §1.4, §10): HF and timm cache `attention_biases[:, idxs]` per device in eval mode and
clear it only in `train()`. Every function here that changes weights calls `.train()` then `.eval()` afterwards.
"""
from __future__ import annotations

import functools
import importlib
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

VARIANTS = ("levit_128s", "levit_128", "levit_192", "levit_256", "levit_384")
NUM_CLASSES = 1000
IMG_SIZE = 224
RESOLUTION = IMG_SIZE // 16  # token grid side after the stem
CHECKPOINT_FORMATS = ("pth-official", "pth", "safetensors", "hf-bin")


@dataclass(frozen=True)
class VariantConfig:
    """Official `specification` entry (levit-spec §1.1)."""

    embed_dims: tuple[int, int, int]  # C per stage
    key_dim: int                      # D, the same in all stages
    num_heads: tuple[int, int, int]   # N per stage (shrink blocks use C_in // D heads)
    depths: tuple[int, int, int]      # X: attention+MLP pairs per stage
    drop_path: float                  # training only; kept for config fidelity


CONFIGS = {
    "levit_128s": VariantConfig((128, 256, 384), 16, (4, 6, 8), (2, 3, 4), 0.0),
    "levit_128": VariantConfig((128, 256, 384), 16, (4, 8, 12), (4, 4, 4), 0.0),
    "levit_192": VariantConfig((192, 288, 384), 32, (3, 5, 6), (4, 4, 4), 0.0),
    "levit_256": VariantConfig((256, 384, 512), 32, (4, 6, 8), (4, 4, 4), 0.0),
    "levit_384": VariantConfig((384, 512, 768), 32, (6, 9, 12), (4, 4, 4), 0.1),
}


class ReferenceUnavailable(ImportError):
    """torch, transformers or timm is not installed."""


# ---------------------------------------------------------------- optional imports


@functools.cache
def _importable(name: str) -> bool:
    try:
        with warnings.catch_warnings():  # torchvision 0.16.2 on torch 2.13: harmless, known (anchors.md)
            warnings.filterwarnings("ignore", message="Failed to load image Python extension")
            module = importlib.import_module(name)
            if name == "transformers":  # lazy module: the model classes (and torchvision) load on first access
                getattr(module, "LevitForImageClassificationWithTeacher")
    except Exception:  # timm can fail with more than ImportError (torchvision mismatches)
        return False
    return True


def have_torch() -> bool:
    return _importable("torch")


def have_transformers() -> bool:
    return have_torch() and _importable("transformers")


def have_timm() -> bool:
    return have_torch() and _importable("timm")


def _require(name: str):
    """Import a reference dependency; all of them need torch (transformers imports without it)."""
    for needed in ("torch", name):
        if not _importable(needed):
            raise ReferenceUnavailable(f"the PyTorch reference needs {needed!r}, which is not importable")
    return importlib.import_module(name)


def _is_torch_tensor(v) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, torch.Tensor)


# ---------------------------------------------------------------- official layout, generated from the config


class Entry(NamedTuple):
    key: str
    shape: tuple[int, ...]
    role: str                # conv_w, linear_w, linear_b, bn_w, bn_b, bn_mean, bn_var, bn_count, bias_table, bias_idx
    grid: tuple | None = None  # (R_q, R_k, stride) for bias_idx entries


def _bn(prefix: str, n: int) -> list[Entry]:
    return [Entry(f"{prefix}.{name}", (n,), role) for name, role in
            (("weight", "bn_w"), ("bias", "bn_b"), ("running_mean", "bn_mean"), ("running_var", "bn_var"))
            ] + [Entry(f"{prefix}.num_batches_tracked", (), "bn_count")]


def _conv_bn(prefix: str, shape: tuple[int, ...]) -> list[Entry]:
    """Conv2d_BN (4-D weight) or Linear_BN (2-D weight): `.c.weight` then `.bn.*`."""
    role = "conv_w" if len(shape) == 4 else "linear_w"
    return [Entry(f"{prefix}.c.weight", shape, role)] + _bn(f"{prefix}.bn", shape[0])


def _bias(prefix: str, nh: int, rq: int, rk: int, stride: int) -> list[Entry]:
    return [Entry(f"{prefix}attention_biases", (nh, rk * rk), "bias_table"),
            Entry(f"{prefix}attention_bias_idxs", (rq * rq, rk * rk), "bias_idx", (rq, rk, stride))]


@functools.cache
def official_layout(variant: str) -> tuple[Entry, ...]:
    """Every key of the official unfused state dict, in order, with its shape (levit-spec §1.9)."""
    cfg = CONFIGS[variant]
    dims, kd = cfg.embed_dims, cfg.key_dim
    c0 = dims[0]
    out: list[Entry] = []
    chans = [3, c0 // 8, c0 // 4, c0 // 2, c0]
    for j in range(4):
        out += _conv_bn(f"patch_embed.{2 * j}", (chans[j + 1], chans[j], 3, 3))

    i, r = 0, RESOLUTION

    def mlp(c: int) -> None:
        nonlocal i
        out.extend(_conv_bn(f"blocks.{i}.m.0", (2 * c, c)) + _conv_bn(f"blocks.{i}.m.2", (c, 2 * c)))
        i += 1

    for s, (c, nh, depth) in enumerate(zip(dims, cfg.num_heads, cfg.depths)):
        for _ in range(depth):
            dh = 2 * kd * nh  # attn_ratio 2
            out.extend(_bias(f"blocks.{i}.m.", nh, r, r, 1) + _conv_bn(f"blocks.{i}.m.qkv", (dh + 2 * nh * kd, c))
                       + _conv_bn(f"blocks.{i}.m.proj.1", (c, dh)))
            i += 1
            mlp(c)
        if s < 2:  # shrink attention (not residual) closing this stage, then its MLP at the next width
            nh_s, r_q = c // kd, (r - 1) // 2 + 1
            dh = 4 * kd * nh_s  # attn_ratio 4
            out.extend(_bias(f"blocks.{i}.", nh_s, r_q, r, 2) + _conv_bn(f"blocks.{i}.kv", (dh + nh_s * kd, c))
                       + _conv_bn(f"blocks.{i}.q.1", (nh_s * kd, c)) + _conv_bn(f"blocks.{i}.proj.1", (dims[s + 1], dh)))
            i += 1
            r = r_q
            mlp(dims[s + 1])
    for head in ("head", "head_dist"):
        out += _bn(f"{head}.bn", dims[-1])
        out += [Entry(f"{head}.l.weight", (NUM_CLASSES, dims[-1]), "linear_w"),
                Entry(f"{head}.l.bias", (NUM_CLASSES,), "linear_b")]
    return tuple(out)


def num_official_blocks(variant: str) -> int:
    """Length of the official flat `blocks` Sequential: 22 for 128S, 28 for the others."""
    return 2 * sum(CONFIGS[variant].depths) + 4


def bias_index(rq: int, rk: int, stride: int) -> np.ndarray:
    """Closed-form `attention_bias_idxs`: |dy|*R_k + |dx| with query position = stride * query grid index."""
    q = np.arange(rq) * stride
    k = np.arange(rk)
    dy = np.abs(q[:, None, None, None] - k[None, None, :, None])
    dx = np.abs(q[None, :, None, None] - k[None, None, None, :])
    return (dy * rk + dx).reshape(rq * rq, rk * rk).astype(np.int64)


def _last(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _zip_positional(src_items: list, dst_keys: list[str], dst_shapes: list[tuple], what: str) -> None:
    """Check a positional zip: same count, and per pair the same shape and last key component."""
    if len(src_items) != len(dst_keys):
        raise ValueError(f"{what}: {len(src_items)} source tensors, expected {len(dst_keys)}")
    bad = [f"  {sk} {tuple(sv.shape)} -> {dk} {ds}" for (sk, sv), dk, ds in zip(src_items, dst_keys, dst_shapes)
           if tuple(sv.shape) != tuple(ds) or _last(sk) != _last(dk)]
    if bad:
        raise ValueError(f"{what}: {len(bad)} positional mismatches:\n" + "\n".join(bad))


def to_official_layout(state_dict: dict, variant: str) -> dict:
    """Rename an HF/timm (or official) state dict to the official layout, adding the index buffers.

    Values keep their type (torch tensors or NumPy arrays) and are not copied. Index buffers present in the input
    are checked against the closed form and replaced by it.
    """
    layout = official_layout(variant)
    grids = {e.shape: e.grid for e in layout if e.role == "bias_idx"}  # the idx shapes are all distinct
    src = []
    for k, v in state_dict.items():
        if _last(k) == "attention_bias_idxs":
            if tuple(v.shape) not in grids:
                raise ValueError(f"{k}: shape {tuple(v.shape)} is not an index-buffer shape of {variant}")
            ref = bias_index(*grids[tuple(v.shape)])
            got = v.detach().cpu().numpy() if _is_torch_tensor(v) else np.asarray(v)
            if not np.array_equal(got, ref):
                raise ValueError(f"{k}: index buffer differs from |dy|*R+|dx|")
        else:
            src.append((k, v))
    targets = [e for e in layout if e.role != "bias_idx"]
    _zip_positional(src, [e.key for e in targets], [e.shape for e in targets], f"to_official_layout({variant})")
    as_torch = bool(src) and _is_torch_tensor(src[0][1])
    values = iter(v for _, v in src)
    out = {}
    for e in layout:
        if e.role == "bias_idx":
            idx = bias_index(*e.grid)
            out[e.key] = sys.modules["torch"].from_numpy(idx) if as_torch else idx
        else:
            out[e.key] = next(values)
    return out


# ---------------------------------------------------------------- building and loading models


def _hf_config(variant: str):
    _require("transformers")
    from levit_np.model.config import get_config
    from levit_np.analysis.torch_reference import hf_config  # the one HF config builder, shared with `levit trace`

    cfg = CONFIGS[variant]
    hf = hf_config(get_config(variant))  # drop_path omitted: eval ignores it, and 5.24 types the field int (0.1 fails)
    # HF derives both shrink blocks from key_dim[0]: right only because every official variant has one D.
    want = [["Subsample", cfg.key_dim, c // cfg.key_dim, 4, 2, 2] for c in cfg.embed_dims[:2]]
    if [list(op) for op in hf.down_ops[:2]] != want:
        raise AssertionError(f"HF down_ops {hf.down_ops} != official {want}")
    return hf


def refresh_bias_cache(model):
    """Drop the eval-mode attention-bias caches (train() clears them) and return the model in eval mode."""
    model.train()
    model.eval()
    return model


@functools.cache
def _draw_plan(variant: str) -> tuple[Entry, ...]:
    return tuple(e for e in official_layout(variant) if e.role != "bias_idx")


def randomise_(model, variant: str, seed: int):
    """Overwrite every weight, BN statistic and attention bias in place, deterministically from `seed`.

    Values are drawn in the official positional order, so HF and timm models get identical tensors for one seed.
    Left alone: `num_batches_tracked` (0, eval ignores it) and the index buffers.
    """
    torch = _require("torch")
    plan = _draw_plan(variant)
    sd = model.state_dict()  # shares storage with the parameters and buffers
    _zip_positional(list(sd.items()), [e.key for e in plan], [e.shape for e in plan], f"randomise_({variant})")
    rng = np.random.default_rng(seed)
    draws = {
        "conv_w": lambda shape: rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[1:])), shape),
        "linear_w": lambda shape: rng.normal(0.0, 1.0 / np.sqrt(shape[1]), shape),
        "linear_b": lambda shape: rng.normal(0.0, 0.1, shape),
        "bn_w": lambda shape: rng.uniform(0.5, 1.5, shape),
        "bn_b": lambda shape: rng.normal(0.0, 0.1, shape),
        "bn_mean": lambda shape: rng.normal(0.0, 0.2, shape),
        "bn_var": lambda shape: rng.uniform(0.5, 2.0, shape),
        "bias_table": lambda shape: rng.normal(0.0, 1.5, shape),
    }
    with torch.no_grad():
        for (_, tensor), e in zip(sd.items(), plan):
            if e.role in draws:
                tensor.copy_(torch.from_numpy(draws[e.role](e.shape).astype(np.float32)))
    return refresh_bias_cache(model)


def build_hf_model(variant: str, seed: int):
    """transformers `LevitForImageClassificationWithTeacher`, official config, all weights random, eval mode."""
    transformers = _require("transformers")
    model = transformers.LevitForImageClassificationWithTeacher(_hf_config(variant))
    return randomise_(model, variant, seed)


def build_timm_model(variant: str, seed: int):
    """timm `create_model(variant, pretrained=False)` (LevitDistilled), randomised like `build_hf_model`."""
    timm = _require("timm")
    model = timm.create_model(variant, pretrained=False, drop_path_rate=CONFIGS[variant].drop_path)
    return randomise_(model, variant, seed)


def load_positional(model, state_dict: dict):
    """Load any of the three layouts into an HF or timm model by position (index buffers skipped), eval mode."""
    torch = _require("torch")
    if "model" in state_dict and isinstance(state_dict["model"], dict):
        state_dict = state_dict["model"]
    src = [(k, v) for k, v in state_dict.items() if _last(k) != "attention_bias_idxs"]
    target = model.state_dict()
    _zip_positional(src, list(target), [tuple(v.shape) for v in target.values()],
                    f"load_positional({type(model).__name__})")
    new = {k: torch.as_tensor(np.asarray(v)) if not _is_torch_tensor(v) else v for k, (_, v) in zip(target, src)}
    model.load_state_dict(new, strict=True)
    return refresh_bias_cache(model)


def load_official_into_hf(official_sd: dict, variant: str):
    """HF model holding an official-layout state dict (`{'model': sd}` also accepted); keys checked strictly."""
    if "model" in official_sd and isinstance(official_sd["model"], dict):
        official_sd = official_sd["model"]
    layout = official_layout(variant)
    got = [(k, tuple(v.shape)) for k, v in official_sd.items()]
    want = [(e.key, e.shape) for e in layout]
    if got != want:
        diff = [f"  {g} != {w}" for g, w in zip(got, want) if g != w][:10]
        raise ValueError(f"not an official {variant} state dict ({len(got)} keys, expected {len(want)}):\n"
                         + "\n".join(diff))
    to_official_layout(official_sd, variant)  # checks the index buffers against the closed form
    model = _require("transformers").LevitForImageClassificationWithTeacher(_hf_config(variant))
    return load_positional(model, official_sd)


def state_dict_numpy(model) -> dict[str, np.ndarray]:
    """The model's state dict as NumPy copies, in its own key order."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def save_checkpoint(state_dict: dict, path, fmt: str) -> Path:
    """Write a state dict (torch or NumPy values) in one of CHECKPOINT_FORMATS; returns the file written.

    pth-official: torch.save({'model': sd}), pass an official-layout dict. pth: torch.save(sd).
    safetensors: save_file on contiguous, unshared copies. hf-bin: torch.save(sd); a directory path gets
    `pytorch_model.bin` inside it.
    """
    torch = _require("torch")
    if fmt not in CHECKPOINT_FORMATS:
        raise ValueError(f"unknown checkpoint format {fmt!r}; expected one of {CHECKPOINT_FORMATS}")
    path = Path(path)
    sd = {k: (v.detach().cpu() if _is_torch_tensor(v) else torch.from_numpy(np.array(v))).clone().contiguous()
          for k, v in state_dict.items()}
    if fmt == "hf-bin" and path.is_dir():
        path = path / "pytorch_model.bin"
    if fmt == "safetensors":
        _require("safetensors.torch").save_file(sd, str(path), metadata={"format": "pt"})
    else:
        torch.save({"model": sd} if fmt == "pth-official" else sd, path)
    return path


# ---------------------------------------------------------------- running the reference


def _flavour(model) -> str:
    if hasattr(model, "levit") and hasattr(model, "classifier_distill"):
        return "hf"
    if hasattr(model, "stem") and hasattr(model, "stages"):
        return "timm"
    raise TypeError(f"not an HF or timm LeViT: {type(model).__name__}")


def _run(model, x: np.ndarray):
    torch = _require("torch")
    if model.training:
        raise ValueError("the reference model is in training mode; call refresh_bias_cache(model) first")
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.no_grad():
        out = model(pixel_values=xt) if _flavour(model) == "hf" else model(xt)
    return out.logits if _flavour(model) == "hf" else out


def reference_logits(model, x: np.ndarray) -> np.ndarray:
    """Eval-mode logits (B, 1000) float32: (head + head_dist) / 2. Thread count is left to the caller."""
    return _run(model, x).numpy().astype(np.float32, copy=True)


def _trace_points(model) -> list[tuple[str, object, str]]:
    """(official name, module, hook kind) in official order; kind is 'out', 'in' (forward-pre) or 'stem'."""
    if _flavour(model) == "hf":
        layers = [layer for stage in model.levit.encoder.stages for layer in stage.layers]
        return [("stem", model.levit.patch_embeddings.embedding_layer_4, "out")] + [
            (f"blocks.{i}", layer, "out") for i, layer in enumerate(layers)]
    torch = _require("torch")
    points: list[tuple[str, object, str]] = [("stem", model.stem, "out")]
    for stage in model.stages:
        if not isinstance(stage.downsample, torch.nn.Identity):
            points += [("", stage.downsample.attn_downsample, "out"), ("", stage.downsample, "out")]
        for block in stage.blocks:  # attn residual = input of block.mlp; MLP residual = block output
            points += [("", block.mlp, "in"), ("", block, "out")]
    return points[:1] + [(f"blocks.{i}", m, kind) for i, (_, m, kind) in enumerate(points[1:])]


def reference_trace(model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs named like the official model: 'stem' (B,C,14,14) and 'blocks.{i}' (B,N,C) of the flat blocks."""
    trace: dict[str, np.ndarray] = {}

    def grab(name):
        return lambda value: trace.__setitem__(name, value.detach().numpy().astype(np.float32, copy=True))

    handles = []
    try:
        for name, module, kind in _trace_points(model):
            store = grab(name)
            if kind == "in":
                handles.append(module.register_forward_pre_hook(lambda m, args, store=store: store(args[0])))
            else:
                handles.append(module.register_forward_hook(lambda m, args, out, store=store: store(out)))
        _run(model, x)
    finally:
        for h in handles:
            h.remove()
    return trace


def attention_modules(model) -> list:
    """The attention modules (regular and shrink) in official order."""
    return [m for m in model.modules() if hasattr(m, "attention_bias_cache")]


def bias_cache_error(model) -> tuple[int, float]:
    """(number of populated eval caches, max |cache - attention_biases[:, idxs]|) over all attention modules."""
    torch = _require("torch")
    n, err = 0, 0.0
    with torch.no_grad():
        for m in attention_modules(model):
            for cached in m.attention_bias_cache.values():
                fresh = m.attention_biases[:, m.attention_bias_idxs]
                n += 1
                err = max(err, float((cached - fresh).abs().max()))
    return n, err
