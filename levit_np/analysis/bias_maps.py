"""Attention-bias maps: what each head adds to the attention logits, as an image over key positions.

For every attention module (and shrink attention) and every head, the map is the bias of the upper-left
query, token (0, 0), towards every key: B[h, |dy|, |dx|] laid out on the key grid. (That query sees every
offset once, so at the training size the map is the learned table itself, viewed as (R, R).) In a shrink
block the queries sit on every other key position, and query (0, 0) sits on key (0, 0), so its map is
defined the same way. At other input sizes the maps show the resampled tables the model then uses.

`render` draws the paper's appendix figure (one row per module, one column per head, one shared colour
scale); matplotlib is an optional extra (`pip install levit-np[plot]`), imported only there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from levit_np.model.attention_bias import gather_bias
from levit_np.model.config import Block, BlockKind, LevitConfig, blocks
from levit_np.errors import LevitError
from levit_np.model.grid import token_grids

QUERY = (0, 0)  # the query whose biases the maps show: the upper-left token


@dataclass(frozen=True)
class BiasMap:
    """The bias maps of one attention module."""

    name: str  # canonical block name, e.g. "stages.0.blocks.1.attn" or "stages.1.downsample.attn"
    stage: int
    block: str  # the block index within its stage ("0", "1", ...), or "down" for the shrink attention
    maps: np.ndarray  # (heads, key rows, key cols): bias from query (0, 0) to every key

    @property
    def label(self) -> str:
        where = "shrink" if self.block == "down" else f"block {self.block}"
        return f"stage {self.stage} {where}"

    @property
    def key_grid(self) -> tuple[int, int]:
        return self.maps.shape[1], self.maps.shape[2]


def block_selector(block: Block) -> str:
    """"down" for a shrink attention, else the index j of `stages.s.blocks.j.attn`."""
    return "down" if block.kind is BlockKind.SHRINK else block.name.split(".")[3]


def attention_grids(block: Block, grids: list[tuple[int, int]]) -> tuple[tuple[int, int], tuple[int, int], int]:
    """(query grid, key grid, stride) of an attention module, given every stage's token grid."""
    if block.kind is BlockKind.SHRINK:
        return grids[block.stage], grids[block.stage - 1], 2
    return grids[block.stage], grids[block.stage], 1


def bias_maps(cfg: LevitConfig, params: dict[str, np.ndarray], size: Optional[tuple[int, int]] = None,
              stage: Optional[int] = None, block: Optional[str] = None) -> list[BiasMap]:
    """The maps of every attention module (or those of `stage` / `block`), for an input of `size` (H, W).

    `block` is a block index within the stage ("0", "1", ...) or "down" for the shrink attention.
    Raises LevitError when the selection matches no attention module.
    """
    height, width = size or (cfg.img_size, cfg.img_size)
    grids = token_grids(cfg, height, width)
    out = []
    if cfg.position != "bias":
        raise LevitError(f"{cfg.name} has no attention biases (position={cfg.position!r})")
    for b in blocks(cfg):
        if b.kind is BlockKind.MLP or (stage is not None and b.stage != stage):
            continue
        if block is not None and block_selector(b) != str(block):
            continue
        q_grid, k_grid, stride = attention_grids(b, grids)
        bias = gather_bias(params[f"{b.name}.attention_biases"], q_grid, k_grid, stride)  # (h, Nq, Nk)
        query = QUERY[0] * q_grid[1] + QUERY[1]
        out.append(BiasMap(b.name, b.stage, block_selector(b), bias[:, query, :].reshape(-1, *k_grid)))
    if not out:
        choices = sorted({(b.stage, block_selector(b)) for b in blocks(cfg) if b.kind.has_attention})
        listed = ", ".join(f"{s}/{j}" for s, j in choices)
        raise LevitError(f"no attention module matches stage={stage} block={block} in {cfg.name}; "
                         f"stage/block pairs: {listed}")
    return out


def to_arrays(maps: list[BiasMap]) -> dict[str, np.ndarray]:
    """{block name: (heads, rows, cols) float32} for `np.savez`."""
    return {m.name: np.asarray(m.maps, dtype=np.float32) for m in maps}


def to_json(maps: list[BiasMap], variant: str, size: tuple[int, int]) -> dict:
    """A JSON-ready description: per module its name, label, key grid and maps[head][row][col]."""
    return {
        "variant": variant,
        "input_size": list(size),
        "query": list(QUERY),
        "modules": [{"name": m.name, "stage": m.stage, "block": m.block, "label": m.label,
                     "heads": int(m.maps.shape[0]), "key_grid": list(m.key_grid),
                     "maps": np.asarray(m.maps, dtype=np.float64).round(6).tolist()} for m in maps],
    }


def render(maps: list[BiasMap], path, fmt: str = "png", title: str = "") -> None:
    """Draw the maps (rows: modules, columns: heads) with one shared, symmetric colour scale, into `path`.

    `fmt` is the file type (png, svg, pdf). The query (0, 0) is outlined in every map.
    """
    try:
        import matplotlib
    except ImportError:
        raise LevitError("drawing bias maps needs matplotlib: pip install 'levit-np[plot]' "
                         "(or export the numbers with --json / --out FILE.npz)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cols = max(m.maps.shape[0] for m in maps)
    limit = max(float(np.abs(m.maps).max()) for m in maps) or 1.0
    cell = 0.82
    fig, axes = plt.subplots(len(maps), cols, figsize=(1.3 + cols * cell, 1.2 + len(maps) * cell), squeeze=False)
    image = None
    for row, m in enumerate(maps):
        for head in range(cols):
            ax = axes[row, head]
            ax.set_xticks([])
            ax.set_yticks([])
            if head >= m.maps.shape[0]:
                ax.set_axis_off()
                continue
            image = ax.imshow(m.maps[head], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.add_patch(Rectangle((QUERY[1] - 0.5, QUERY[0] - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.4))
            if row == 0 or head >= maps[row - 1].maps.shape[0]:
                ax.set_title(f"head {head}", fontsize=8, pad=3)
        rows, cols_k = m.key_grid
        axes[row, 0].set_ylabel(f"{m.label}\n{rows}x{cols_k} keys", fontsize=8, rotation=0, ha="right", va="center")
    fig.subplots_adjust(left=1.2 / fig.get_figwidth(), right=0.9, top=1 - 0.95 / fig.get_figheight(),
                        bottom=0.2 / fig.get_figheight(), wspace=0.08, hspace=0.25)
    top, bottom = axes[0, 0].get_position().y1, axes[-1, 0].get_position().y0
    bar_ax = fig.add_axes([0.925, bottom, 0.015, top - bottom])  # as tall as the maps
    fig.colorbar(image, cax=bar_ax).set_label("bias added to q.k / sqrt(D)", fontsize=8)
    fig.suptitle((title + "\n" if title else "") + "bias from the query at the outlined upper-left token "
                 "to every key", fontsize=10, y=1 - 0.12 / fig.get_figheight(), va="top")
    fig.savefig(path, dpi=110, format=fmt, bbox_inches="tight", pad_inches=0.15)  # keep the colour-bar labels
    plt.close(fig)
