"""LeViT's architecture as a figure like the paper's Fig. 4, drawn from a config (no weights needed).

`architecture_boxes(cfg)` says what the figure shows, left to right, as data: the input, the stem, each stage
and each shrink attention, and the head, every label computed from the config (`model.config`) and every cost
from `analysis.flops.costs`. `draw(cfg)` lays the boxes out with matplotlib (an optional extra,
`pip install 'levit-np[plot]'`, imported only there); `render(cfg, path, fmt)` writes the file.

Stages carry the paper's numbers (1, 2, 3) with the code's index beside them (`stages.0` ... `stages.2`).
A box's height grows with the side of the token grid it works on, as the blocks of Fig. 4 shrink.
"""

from __future__ import annotations

from dataclasses import dataclass

from levit_np.analysis.flops import Cost, costs
from levit_np.errors import LevitError
from levit_np.model.config import VARIANTS, BlockKind, LevitConfig, blocks, stem_convs
from levit_np.model.grid import subsampled_side

KIND_COLOURS = {"input": "#e8e8e8", "stem": "#f6d7a7", "stage": "#b9d7ea", "shrink": "#f4b6b6", "head": "#cfe8c4"}


@dataclass(frozen=True)
class Box:
    """One box of the figure: a part of the model, its labels and what it costs."""

    kind: str  # "input", "stem", "stage", "shrink" or "head" (KIND_COLOURS)
    title: str  # e.g. "stage 1", "shrink attention"
    subtitle: str  # where it lives in the code, e.g. "stages.0", or the input size
    lines: tuple[str, ...]  # the widths, heads and depths that define it
    side: int  # token-grid side it works on (the image side for the input)
    macs: int  # multiply-adds per image (the paper's "FLOPs")
    params: int  # learned parameters


def display_name(cfg: LevitConfig) -> str:
    """'levit_128s' -> 'LeViT-128S' (the paper's spelling) for the five variants; other names are kept as they are."""
    if cfg.name in VARIANTS:
        return "LeViT-" + cfg.name.removeprefix("levit_").upper()
    return cfg.name


def _sum(items: list[Cost]) -> tuple[int, int]:
    return sum(c.macs for c in items), sum(c.params for c in items)


def _stem_box(cfg: LevitConfig, items: list[Cost]) -> Box:
    convs = stem_convs(cfg)
    kernel, stride = convs[0].kernel, convs[0].stride
    chans = "→".join(str(c) for c in (convs[0].cin, *(conv.cout for conv in convs)))
    lines = [f"{len(convs)} x conv {kernel}x{kernel}, stride {stride}", f"channels {chans}"]
    if any(conv.activation for conv in convs):
        lines.append("BN after each, Hardswish between")
    side = cfg.img_size
    for conv in convs:
        side = (side + 2 * conv.padding - conv.kernel) // conv.stride + 1
    lines.append(f"{cfg.img_size}x{cfg.img_size} → {side}x{side}")
    return Box("stem", "conv stem", "stem", tuple(lines), cfg.resolutions[0],
               *_sum([c for c in items if c.stage == "stem"]))


def architecture_boxes(cfg: LevitConfig) -> list[Box]:
    """The boxes of the figure, in forward order: input, stem, then per stage its shrink attention (stages after
    the first) and its blocks, then the pooled head. Labels and costs come from `cfg` alone."""
    items = costs(cfg)
    boxes = [Box("input", "image", f"3 x {cfg.img_size} x {cfg.img_size}", ("RGB, normalised",), cfg.img_size, 0, 0),
             _stem_box(cfg, items)]
    res = cfg.resolutions
    for s, dim in enumerate(cfg.embed_dims):
        stage_blocks = [b for b in blocks(cfg) if b.stage == s]
        shrink = next((b for b in stage_blocks if b.kind is BlockKind.SHRINK), None)
        if shrink is not None:
            down = [c for c in items if c.block.startswith(f"stages.{s}.downsample.")]
            mlp_hidden = next(b.hidden_dim for b in stage_blocks if b.name == f"stages.{s}.downsample.mlp")
            new_side = subsampled_side(shrink.resolution)
            boxes.append(Box("shrink", "shrink attention", f"stages.{s}.downsample", (
                f"N = {shrink.num_heads} heads, D = {shrink.key_dim}, d = {shrink.value_dim}",
                f"C {shrink.dim_in} → {shrink.dim_out}",
                f"grid {shrink.resolution}x{shrink.resolution} → {new_side}x{new_side}",
                f"then MLP {dim}→{mlp_hidden}→{dim}",
            ), shrink.resolution, *_sum(down)))
        attn = next(b for b in stage_blocks if b.kind is BlockKind.ATTENTION)
        mlp = next(b for b in stage_blocks if b.name == f"stages.{s}.blocks.0.mlp")
        own = [c for c in items if c.stage == f"stage {s}" and not c.block.startswith(f"stages.{s}.downsample.")]
        boxes.append(Box("stage", f"stage {s + 1}", f"stages.{s}", (
            f"{cfg.depths[s]} x (attention + MLP)",
            f"C = {dim}",
            f"N = {attn.num_heads} heads",
            f"D = {attn.key_dim}, d = {attn.value_dim}",
            f"MLP {dim}→{mlp.hidden_dim}→{dim}",
            f"{res[s]}x{res[s]} = {res[s] ** 2} tokens",
        ), res[s], *_sum(own)))
    heads = [c for c in items if c.stage == "head"]
    head_lines = ["average of the tokens", f"{len(heads)} x (BN, linear {cfg.embed_dims[-1]}→{cfg.num_classes})"]
    if len(heads) == 2:
        head_lines.append("class + distillation, averaged")
    boxes.append(Box("head", "pool + heads", "head, head_dist" if len(heads) == 2 else "head", tuple(head_lines),
                     1, *_sum(heads)))
    return boxes


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise LevitError("drawing the architecture needs matplotlib: pip install 'levit-np[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw(cfg: LevitConfig):
    """A matplotlib Figure of the architecture: one box per `architecture_boxes` entry, arrows between them."""
    plt = _pyplot()
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    boxes = architecture_boxes(cfg)
    total_macs, total_params = sum(b.macs for b in boxes), sum(b.params for b in boxes)
    width, gap, top = 2.3, 0.55, 4.6
    largest = max(b.side for b in boxes if b.kind != "input")
    fig, ax = plt.subplots(figsize=(1.0 + len(boxes) * (width + gap) * 0.62, 4.4))
    for i, box in enumerate(boxes):
        x = i * (width + gap)
        # Box height: 3.6 for the first stage's grid, shrinking with the grid side; fixed for image and head.
        height = 4.0 if box.kind == "input" else 1.0 if box.kind == "head" else 1.0 + 2.6 * box.side / largest
        y = top - height
        ax.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0.02,rounding_size=0.12",
                                    facecolor=KIND_COLOURS[box.kind], edgecolor="#333333", lw=1.0))
        ax.text(x + width / 2, top - 0.25, box.title, ha="center", va="top", fontsize=10, weight="bold")
        ax.text(x + width / 2, top - 0.62, box.subtitle, ha="center", va="top", fontsize=7.5, family="monospace")
        if box.kind in ("stage", "shrink"):
            ax.text(x + width / 2, y + 0.45, f"{box.side}x{box.side}", ha="center", va="center", fontsize=13,
                    color="#555555")
        ax.text(x + width / 2, min(y, top - 1.0) - 0.15, "\n".join(box.lines), ha="center", va="top", fontsize=7.5,
                linespacing=1.35)
        if box.kind != "input":
            share = 100 * box.macs / total_macs if total_macs else 0.0
            ax.text(x + width / 2, -1.35, f"{box.macs / 1e6:.1f} MFLOPs ({share:.0f}%)\n{box.params / 1e6:.2f}M params",
                    ha="center", va="top", fontsize=7.5, color="#333333", weight="bold")
        if i:
            ax.add_patch(FancyArrowPatch((x - gap + 0.05, top - 0.9), (x - 0.05, top - 0.9), arrowstyle="-|>",
                                         mutation_scale=12, color="#333333"))
    ax.set_xlim(-0.2, len(boxes) * (width + gap) - gap + 0.2)
    ax.set_ylim(-2.0, top + 0.1)
    ax.set_axis_off()
    ax.set_title(f"{display_name(cfg)}: {total_params / 1e6:.2f}M parameters, {total_macs / 1e6:.1f} MFLOPs "
                 f"(multiply-adds) at {cfg.img_size}x{cfg.img_size}\n"
                 "drawn from levit_np.model.config; stages numbered as in the paper (code: stages.0, 1, 2)",
                 fontsize=10.5)
    fig.tight_layout()
    return fig


def render(cfg: LevitConfig, path, fmt: str = "png") -> None:
    """Draw the architecture of `cfg` into `path` as `fmt` (png, svg or pdf)."""
    plt = _pyplot()
    fig = draw(cfg)
    fig.savefig(path, format=fmt, dpi=100)
    plt.close(fig)


def figure_texts(fig) -> list[str]:
    """Every text element of a figure drawn by `draw` (titles included): what a reader sees written."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]
