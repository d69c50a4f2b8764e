"""Token grids: which input sizes run and the grid each stage sees.

The convolutional stem divides each side by 16 and each shrink block ceil-halves the grid (a ::2 pick), so
any H, W that are multiples of 16 give whole token grids; only the attention-bias tables are tied to the
training size, and `attention_bias.resample_table` adapts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from levit_np.model.config import LevitConfig


MAX_SIDE = 1024  # 64x64 tokens: stage 1's attention matrices are then (heads, 4096, 4096) floats per image


def check_input_size(height: int, width: int, patch_size: int = 16) -> None:
    """Raise ValueError unless height and width are positive multiples of the stem's stride, at most MAX_SIDE."""
    if height < patch_size or width < patch_size or height % patch_size or width % patch_size:
        raise ValueError(f"image height and width must be positive multiples of {patch_size}, got {height}x{width}")
    if max(height, width) > MAX_SIDE:
        raise ValueError(f"image sides above {MAX_SIDE} are not supported (got {height}x{width}): attention is "
                         "quadratic in the token count and the matrices would not fit in memory")


def subsampled_side(side: int, stride: int = 2) -> int:
    """Tokens left along a side of `side` tokens after keeping every `stride`-th (a ::stride pick): ceil(side / stride)."""
    return (side - 1) // stride + 1


def token_grids(cfg: "LevitConfig", height: int, width: int) -> list[tuple[int, int]]:
    """The (rows, cols) token grid of each stage for an H x W input: (H/16, W/16), then ceil-halved."""
    check_input_size(height, width, cfg.patch_size)
    grids = [(height // cfg.patch_size, width // cfg.patch_size)]
    for _ in range(cfg.num_stages - 1):
        rows, cols = grids[-1]
        grids.append((subsampled_side(rows), subsampled_side(cols)))
    return grids
