"""LeViT variants as data: one frozen config per model, and the block layout derived from it.

The five released models (paper Table 3, official `specification` dict) differ only in the numbers below.
Everything else (stage widths of the shrink blocks, the bias tables, the block sequence) follows from them.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from dataclasses import dataclass
from typing import Iterator

from levit_np.model.grid import subsampled_side


@dataclass(frozen=True)
class LevitConfig:
    """Hyper-parameters of one LeViT model (names follow timm; C, D, N, X are the paper's)."""

    name: str
    embed_dims: tuple[int, ...]  # C: channels of each stage, e.g. (128, 256, 384)
    key_dim: int  # D: width of each query/key head, the same in all stages
    num_heads: tuple[int, ...]  # N: attention heads in each stage
    depths: tuple[int, ...]  # X: attention+MLP block pairs in each stage
    attn_ratio: int = 2  # value width d = attn_ratio * D in the stage blocks
    mlp_ratio: int = 2  # MLP hidden width = mlp_ratio * C (the paper halves ViT's 4)
    down_attn_ratio: int = 4  # value width d = 4 * D in the shrink (subsample) attention
    down_mlp_ratio: int = 2  # MLP ratio of the MLP that follows each shrink block
    img_size: int = 224  # the training resolution; attention-bias tables are sized for it
    patch_size: int = 16  # total stride of the convolutional stem (four stride-2 convs)
    in_chans: int = 3
    num_classes: int = 1000
    # Architecture switches for the paper's Table 5 ablations (levit_np/analysis/ablations.py); the defaults are LeViT.
    stem_kind: str = "conv4"  # "conv4": four 3x3 stride-2 convs; "patch16": one 16x16 stride-16 conv (A2)
    norm: str = "bn"  # "bn": BatchNorm after every linear; "ln": pre-LayerNorm per block, linears with bias (A3)
    position: str = "bias"  # "bias": attention bias per block; "absolute": one learned embedding added to the tokens (A5)
    attn_activation: bool = True  # Hardswish between the attention product and proj (off in A7)
    down_num_heads: tuple[int, ...] | None = None  # heads of each shrink block; None: C_in / D (A6 sets them)

    @property
    def num_stages(self) -> int:
        return len(self.embed_dims)

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Token-grid side of each stage at `img_size`: 14, 7, 4 for 224 (ceil-halving, as a ::2 pick gives)."""
        sides = [self.img_size // self.patch_size]
        for _ in range(self.num_stages - 1):
            sides.append(subsampled_side(sides[-1]))
        return tuple(sides)

    def down_heads(self, stage: int) -> int:
        """Heads of the shrink block that opens `stage` (>= 1): C_in / D, as in the official down_ops."""
        if self.down_num_heads is not None:
            return self.down_num_heads[stage - 1]
        return self.embed_dims[stage - 1] // self.key_dim

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LevitConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


VARIANTS: dict[str, LevitConfig] = {
    cfg.name: cfg
    for cfg in (
        LevitConfig("levit_128s", embed_dims=(128, 256, 384), key_dim=16, num_heads=(4, 6, 8), depths=(2, 3, 4)),
        LevitConfig("levit_128", embed_dims=(128, 256, 384), key_dim=16, num_heads=(4, 8, 12), depths=(4, 4, 4)),
        LevitConfig("levit_192", embed_dims=(192, 288, 384), key_dim=32, num_heads=(3, 5, 6), depths=(4, 4, 4)),
        LevitConfig("levit_256", embed_dims=(256, 384, 512), key_dim=32, num_heads=(4, 6, 8), depths=(4, 4, 4)),
        LevitConfig("levit_384", embed_dims=(384, 512, 768), key_dim=32, num_heads=(6, 9, 12), depths=(4, 4, 4)),
    )
}

ALIASES = {
    "128s": "levit_128s", "128": "levit_128", "192": "levit_192", "256": "levit_256", "384": "levit_384",
}


def variant_name(name: str) -> str:
    """The timm name of a variant, from any of its spellings: `levit_128s`, `128s`, `128S`, `LeViT-128S`,
    `levit128s`, `LeViT_256`. Raises ValueError naming the known variants."""
    key = str(name).strip().lower().replace("-", "_")
    short = key.removeprefix("levit").lstrip("_")
    canonical = ALIASES.get(short, key)
    if canonical not in VARIANTS:
        raise ValueError(f"unknown LeViT variant {name!r}; known: {', '.join(VARIANTS)} (or short: 128s, 256, "
                         f"LeViT-256, ...)")
    return canonical


def get_config(name: str) -> LevitConfig:
    """Look a variant up by any spelling `variant_name` accepts (`levit_128s`, `128S`, `LeViT-128S`)."""
    return VARIANTS[variant_name(name)]


class BlockKind(str, enum.Enum):
    """The three kinds of block in LeViT's sequence (a str, so the checkpoint tables can key on the same names)."""

    ATTENTION = "attn"  # residual multi-head attention with the attention bias
    MLP = "mlp"  # residual two-layer MLP
    SHRINK = "down"  # shrink attention: queries from a subsampled grid, halves the grid, widens C; not residual

    @property
    def has_attention(self) -> bool:
        return self is not BlockKind.MLP

    @property
    def residual(self) -> bool:
        return self is not BlockKind.SHRINK


@dataclass(frozen=True)
class Block:
    """One entry of the block sequence: what it is, where it runs and its widths.

    `resolution` is the side of the *input* token grid at img_size.
    """

    name: str  # canonical prefix, e.g. "stages.0.blocks.1.attn" or "stages.1.downsample.attn"
    kind: BlockKind
    stage: int
    dim_in: int
    dim_out: int
    resolution: int
    num_heads: int = 0
    key_dim: int = 0
    value_dim: int = 0  # d, the per-head value width
    hidden_dim: int = 0  # MLP hidden width
    attn_activation: bool = True  # Hardswish before proj (attention blocks; False only in ablation A7)

    @property
    def bias_stride(self) -> int:
        """How far apart the queries sit on the key grid: 2 in a shrink block (every other token), else 1."""
        return 2 if self.kind is BlockKind.SHRINK else 1


def blocks(cfg: LevitConfig) -> Iterator[Block]:
    """The flat block sequence, in the order of the official `blocks` Sequential.

    Stage s opens (s >= 1) with a shrink attention and its residual MLP, then runs depths[s] pairs of
    residual attention + residual MLP. (timm names the shrink pair `stages.s.downsample`, as here; the
    official code and Hugging Face close stage s-1 with it instead: same order, other names.)
    """
    res = cfg.resolutions
    for s, dim in enumerate(cfg.embed_dims):
        if s > 0:
            prev = cfg.embed_dims[s - 1]
            yield Block(name=f"stages.{s}.downsample.attn", kind=BlockKind.SHRINK, stage=s, dim_in=prev, dim_out=dim,
                        resolution=res[s - 1], num_heads=cfg.down_heads(s), key_dim=cfg.key_dim,
                        value_dim=cfg.down_attn_ratio * cfg.key_dim, attn_activation=cfg.attn_activation)
            yield Block(name=f"stages.{s}.downsample.mlp", kind=BlockKind.MLP, stage=s, dim_in=dim, dim_out=dim,
                        resolution=res[s], hidden_dim=dim * cfg.down_mlp_ratio)
        for j in range(cfg.depths[s]):
            yield Block(name=f"stages.{s}.blocks.{j}.attn", kind=BlockKind.ATTENTION, stage=s, dim_in=dim,
                        dim_out=dim, resolution=res[s], num_heads=cfg.num_heads[s], key_dim=cfg.key_dim,
                        value_dim=cfg.attn_ratio * cfg.key_dim, attn_activation=cfg.attn_activation)
            yield Block(name=f"stages.{s}.blocks.{j}.mlp", kind=BlockKind.MLP, stage=s, dim_in=dim, dim_out=dim,
                        resolution=res[s], hidden_dim=dim * cfg.mlp_ratio)


@functools.lru_cache(maxsize=None)
def block_sequence(cfg: LevitConfig) -> tuple[Block, ...]:
    """`blocks(cfg)` as a tuple, built once per config: the forward pass walks it on every call, and building its
    frozen dataclasses costs ~0.14 ms."""
    return tuple(blocks(cfg))


def stem_channels(cfg: LevitConfig) -> tuple[int, ...]:
    """Channels through the stem: 3 -> C/8 -> C/4 -> C/2 -> C."""
    c = cfg.embed_dims[0]
    return (cfg.in_chans, c // 8, c // 4, c // 2, c)


@dataclass(frozen=True)
class StemConv:
    """One conv (+BN) of the stem: its name, widths and geometry."""

    name: str  # e.g. "stem.conv1"
    cin: int
    cout: int
    kernel: int
    stride: int
    padding: int
    activation: bool  # Hardswish after the BN


def stem_convs(cfg: LevitConfig) -> tuple[StemConv, ...]:
    """The stem as data: LeViT's four 3x3 stride-2 convs (no activation after the last), or ViT's 16x16 patch conv."""
    if cfg.stem_kind == "patch16":
        return (StemConv("stem.conv1", cfg.in_chans, cfg.embed_dims[0], cfg.patch_size, cfg.patch_size, 0, False),)
    if cfg.stem_kind != "conv4":
        raise ValueError(f"unknown stem_kind {cfg.stem_kind!r}; choose conv4 or patch16")
    chans = stem_channels(cfg)
    return tuple(StemConv(f"stem.conv{i + 1}", chans[i], chans[i + 1], 3, 2, 1, i < 3) for i in range(4))
