"""Checkpoint import: any of the three PyTorch layouts -> canonical tensors -> a levit-np HDF5 file.

Strict by design: every source key is either mapped or explicitly ignored, every expected tensor is present
with the right shape, and all problems are reported together in one ConversionError.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from levit_np.model.attention_bias import bias_index
from levit_np.model.config import VARIANTS, LevitConfig, get_config
from levit_np.model.grid import subsampled_side
from levit_np.errors import ConversionError, OutputError
from levit_np.weights.fileio import check_output_path, sha256_file
from levit_np.weights.layouts import Layout, detect_layout, official_bias_index_keys
from levit_np.model.params import param_shapes
from levit_np.weights.hdf5_file import summarize, write_weights


@dataclass
class Conversion:
    """The result of mapping a checkpoint onto a variant."""

    config: LevitConfig
    layout: Layout
    params: dict[str, np.ndarray]
    ignored: list[str]  # source keys read but not needed (index buffers, BN step counters)
    source_keys: int


def map_state_dict(state: dict[str, np.ndarray], variant: Optional[str] = None) -> Conversion:
    """Map a flat source state dict onto canonical names; the variant is inferred from shapes unless given.

    The class count comes from the head's shape (a fine-tuned LeViT with 10 classes converts as such). With
    `variant` given and not fitting, the error says first which variant the checkpoint is, when one fits.
    """
    try:
        layout = detect_layout(state)
        wanted = get_config(variant) if variant else None
    except ValueError as e:
        raise ConversionError(str(e)) from None
    attempts = [(cfg, _problems(state, cfg, layout))
                for cfg in (_with_class_count(cfg, state, layout) for cfg in VARIANTS.values())]
    fitting = [cfg for cfg, problems in attempts if not problems]
    if wanted is not None:
        if fitting and fitting[0].name != wanted.name:
            raise ConversionError(f"this is a {fitting[0].name} checkpoint, not {wanted.name}: drop --variant "
                                  f"(the variant is inferred from the shapes) or give --variant {fitting[0].name}")
        closest, closest_problems = min(attempts, key=lambda attempt: len(attempt[1]))
        mine = [attempt for attempt in attempts if attempt[0].name == wanted.name]
        if not fitting and closest.name != wanted.name and len(closest_problems) < len(mine[0][1]):
            raise ConversionError(f"this looks like a {closest.name} checkpoint, not {wanted.name}; as {closest.name} "
                                  f"it has {len(closest_problems)} problem(s): {summarize(closest_problems)}")
        attempts, fitting = mine, [cfg for cfg, problems in mine if not problems]
    if not fitting:
        cfg, problems = min(attempts, key=lambda attempt: len(attempt[1]))
        which = f"as {cfg.name}" if variant else f"as any LeViT variant (closest: {cfg.name})"
        raise ConversionError(f"{layout.name} checkpoint does not fit {which}: {len(problems)} problem(s): "
                              + summarize(problems))
    cfg = fitting[0]
    key_map = layout.key_map(cfg)
    params = {name: np.ascontiguousarray(state[key], dtype=np.float32) for name, key in key_map.items()}
    ignored = [key for key in state if key.endswith(layout.ignored_suffixes)]
    return Conversion(cfg, layout, params, ignored, len(state))


def _with_class_count(cfg: LevitConfig, state: dict[str, np.ndarray], layout: Layout) -> LevitConfig:
    """`cfg` with as many classes as the checkpoint's head has rows (unchanged when the head is missing)."""
    head = state.get(layout.key_map(cfg).get("head.weight", ""))
    if head is None or getattr(head, "ndim", 0) != 2 or head.shape[0] < 1:
        return cfg
    return dataclasses.replace(cfg, num_classes=int(head.shape[0]))


def _problems(state: dict[str, np.ndarray], cfg: LevitConfig, layout: Layout) -> list[str]:
    """Everything that stops `state` from being exactly `cfg` in `layout`."""
    key_map = layout.key_map(cfg)
    shapes = param_shapes(cfg)
    problems = []
    for name, key in key_map.items():
        if key not in state:
            problems.append(f"missing key {key}")
        elif tuple(state[key].shape) != shapes[name]:
            problems.append(f"{key} has shape {tuple(state[key].shape)}, expected {shapes[name]}")
        elif not np.issubdtype(state[key].dtype, np.floating):
            problems.append(f"{key} has dtype {state[key].dtype}, expected a float tensor")
    used = set(key_map.values())
    problems += [f"unexpected key {key}" for key in state
                 if key not in used and not key.endswith(layout.ignored_suffixes)]
    if layout.name == "official":
        problems += _bias_index_problems(state, cfg)
    return problems


def _bias_index_problems(state: dict[str, np.ndarray], cfg: LevitConfig) -> list[str]:
    """The official file stores each bias index buffer; it must equal |dy| * R + |dx| (we recompute it)."""
    problems = []
    for key, block in official_bias_index_keys(cfg).items():
        side = block.resolution
        q_side = subsampled_side(side, block.bias_stride)
        expected = bias_index((q_side, q_side), (side, side), block.bias_stride)
        if key not in state:
            problems.append(f"missing key {key}")
        elif state[key].shape != expected.shape or not np.array_equal(state[key], expected):
            problems.append(f"{key} is not the standard |dy|*R+|dx| index of a {side}x{side} grid")
    return problems


def read_checkpoint(path: str | os.PathLike, variant: Optional[str] = None) -> Conversion:
    """Read any supported checkpoint file and map it (no PyTorch needed, no pickled code run)."""
    from levit_np.weights.checkpoint_io import read_state_dict

    return map_state_dict(read_state_dict(path), variant)


def convert_checkpoint(src: str | os.PathLike, out: str | os.PathLike, variant: Optional[str] = None) -> Conversion:
    """`levit convert`: read `src`, check it strictly, write the HDF5 file `out` atomically."""
    check_output_path(out)
    if Path(out).exists() and Path(src).exists() and os.path.samefile(src, out):
        raise OutputError(f"refusing to write {out}: it is the source checkpoint itself (choose another -o)")
    conversion = read_checkpoint(src, variant)
    write_weights(out, conversion.config, conversion.params,
                  source_name=Path(src).name, source_sha256=sha256_file(src), source_layout=conversion.layout.name)
    return conversion


def describe_checkpoint(path: str | os.PathLike) -> dict:
    """What a checkpoint file holds, for `levit info`: its format, key layout, variant and class count when it
    maps onto one (else `problem` says why not), tensor and value counts. Reads it as `levit convert` does."""
    from levit_np.weights.checkpoint_io import read_state_dict, sniff_format

    file_format = sniff_format(path)
    state = read_state_dict(path)
    tensors = {key: value for key, value in state.items() if isinstance(value, np.ndarray)}
    summary = {"path": os.fspath(path), "format": file_format, "tensors": len(tensors),
               "values_stored": int(sum(value.size for value in tensors.values()))}
    try:
        conversion = map_state_dict(state)
    except ConversionError as e:
        try:
            summary["layout"] = detect_layout(state).name
        except ValueError:
            summary["layout"] = None
        summary["problem"] = str(e)
        return summary
    cfg = conversion.config
    summary.update(layout=conversion.layout.name, layout_description=conversion.layout.description,
                   variant=cfg.name, num_classes=cfg.num_classes, ignored_keys=len(conversion.ignored))
    return summary
