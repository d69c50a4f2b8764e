"""Inputs other than 224 x 224: which sizes run, the token grids they give, and preprocessing to H x W.

The convolutional stem divides each side by 16 and each shrink block ceil-halves the grid (a ::2 pick), so
any H, W that are multiples of 16 give whole token grids; only the attention-bias tables are tied to the
training size, and `attention_bias.resample_table` adapts them.
"""

from __future__ import annotations

import math

import numpy as np

from .config import LevitConfig


MAX_SIDE = 1024  # 64x64 tokens: stage 1's attention matrices are then (heads, 4096, 4096) floats per image


def check_input_size(height: int, width: int, patch_size: int = 16) -> None:
    """Raise ValueError unless height and width are positive multiples of the stem's stride, at most MAX_SIDE."""
    if height < patch_size or width < patch_size or height % patch_size or width % patch_size:
        raise ValueError(f"image height and width must be positive multiples of {patch_size}, got {height}x{width}")
    if max(height, width) > MAX_SIDE:
        raise ValueError(f"image sides above {MAX_SIDE} are not supported (got {height}x{width}): attention is "
                         "quadratic in the token count and the matrices would not fit in memory")


def token_grids(cfg: LevitConfig, height: int, width: int) -> list[tuple[int, int]]:
    """The (rows, cols) token grid of each stage for an H x W input: (H/16, W/16), then ceil-halved."""
    check_input_size(height, width, cfg.patch_size)
    grids = [(height // cfg.patch_size, width // cfg.patch_size)]
    for _ in range(cfg.num_stages - 1):
        rows, cols = grids[-1]
        grids.append(((rows - 1) // 2 + 1, (cols - 1) // 2 + 1))
    return grids


def cover_short_side(image_size: tuple[int, int], height: int, width: int) -> int:
    """The shorter-side length after which a torchvision-style Resize covers height x width (aspect kept).

    `resized_shape` truncates the longer side, so the smallest length is searched upward from the estimate.
    """
    from .preprocessing import resized_shape

    w, h = image_size
    short = max(math.ceil(width * min(w, h) / w), math.ceil(height * min(w, h) / h))
    while True:
        new_w, new_h = resized_shape(image_size, short)
        if new_w >= width and new_h >= height:
            return short
        short += 1


def preprocess_hw(image, height: int, width: int, crop_pct: float = 0.875) -> np.ndarray:
    """The evaluation transform for an H x W input: a path or PIL image -> float32 (3, H, W).

    Square sizes run `levit_np.preprocess(image, size=H)` (the official transform; at 224 it is exactly it).
    Otherwise the image is resized (bicubic, aspect kept) until it covers floor(H / crop_pct) x
    floor(W / crop_pct), then centre-cropped to H x W: the same "crop 87.5% of the middle" rule, per side.
    """
    from .preprocessing import (center_crop_box, open_image, preprocess, resize_shorter_side, resize_size,
                                to_normalized_array, to_rgb)

    check_input_size(height, width)
    if height == width:
        return preprocess(image, size=height, crop_pct=crop_pct)
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        image = open_image(image)
    img = to_rgb(image)
    short = cover_short_side(img.size, resize_size(height, crop_pct), resize_size(width, crop_pct))
    img = resize_shorter_side(img, short)
    img = img.crop(center_crop_box(img.size, height, width))
    return to_normalized_array(img)
