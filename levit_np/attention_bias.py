"""LeViT's attention bias: one learned scalar per head and per (|dy|, |dx|) offset between a query and a key.

Paper Eq. 1: A[h, q, k] = <Q_q, K_k> + B[h, |x_q - x_k|, |y_q - y_k|]. The checkpoint stores B as a
table (heads, R*R) for a key grid of side R; entry |dy| * R + |dx| belongs to offset (dy, dx). In a shrink
block the queries sit on every `stride`-th key position, so the offset is stride * q_pos - k_pos.
"""

from __future__ import annotations

import numpy as np


def grid_positions(rows: int, cols: int, stride: int = 1) -> np.ndarray:
    """(y, x) of every token of a row-major grid, scaled by `stride`. -> (rows*cols, 2)"""
    ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return np.stack([ys.ravel(), xs.ravel()], axis=1) * stride


def bias_offsets(q_grid: tuple[int, int], k_grid: tuple[int, int], stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """|dy| and |dx| between every query and key. -> two (Nq, Nk) int arrays"""
    q = grid_positions(*q_grid, stride=stride)
    k = grid_positions(*k_grid)
    delta = np.abs(q[:, None, :] - k[None, :, :])
    return delta[..., 0], delta[..., 1]


def bias_index(q_grid: tuple[int, int], k_grid: tuple[int, int], stride: int = 1) -> np.ndarray:
    """The official `attention_bias_idxs` buffer: |dy| * R + |dx| with R the key-grid width. -> (Nq, Nk)"""
    dy, dx = bias_offsets(q_grid, k_grid, stride)
    return dy * k_grid[1] + dx


def gather_bias(table: np.ndarray, q_grid: tuple[int, int], k_grid: tuple[int, int], stride: int = 1) -> np.ndarray:
    """Expand a bias table (heads, R*R) into the per-pair bias (heads, Nq, Nk) for the given grids.

    The table's side R must equal the key grid's: the model is only defined at its training size.
    """
    side = int(round(np.sqrt(table.shape[1])))
    if k_grid != (side, side):
        raise ValueError(f"attention-bias table is for a {side}x{side} key grid, not {k_grid[0]}x{k_grid[1]}")
    return table[:, bias_index(q_grid, k_grid, stride)]
