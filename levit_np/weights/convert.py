"""Checkpoint import: any of the three PyTorch layouts -> canonical tensors -> a levit-np HDF5 file.

Strict by design: every source key is either mapped or explicitly ignored, every expected tensor is present
with the right shape, and all problems are reported together in one ConversionError.
"""

from __future__ import annotations

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
    """Map a flat source state dict onto canonical names; the variant is inferred from shapes unless given."""
    try:
        layout = detect_layout(state)
        candidates = [get_config(variant)] if variant else list(VARIANTS.values())
    except ValueError as e:
        raise ConversionError(str(e)) from None
    attempts = [(cfg, _problems(state, cfg, layout)) for cfg in candidates]
    fitting = [cfg for cfg, problems in attempts if not problems]
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
