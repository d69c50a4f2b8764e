"""LeViT's attention bias: one learned scalar per head and per (|dy|, |dx|) offset between a query and a key.

Paper Eq. 1: A[h, q, k] = <Q_q, K_k> + B[h, |x_q - x_k|, |y_q - y_k|]. The checkpoint stores B as a
table (heads, R*R) for a key grid of side R; entry |dy| * R + |dx| belongs to offset (dy, dx). In a shrink
block the queries sit on every `stride`-th key position, so the offset is stride * q_pos - k_pos.

Other input sizes (`resample_table`): a key grid of kh x kw needs offsets |dy| in 0..kh-1 and |dx| in
0..kw-1, while the table holds 0..R-1 for both. The table, viewed as (heads, R, R) over (|dy|, |dx|), is
resampled to (heads, kh, kw) by separable bicubic interpolation:
  * sample positions are align-corners style over the offset grid: new offset i samples old offset
    i * (R - 1) / (n - 1), so offset 0 (a token attending to its own position) and the largest offset keep
    their learned values exactly, and the rest is stretched linearly in between (n = 1 samples offset 0);
  * the kernel is Keys' cubic convolution with a = -0.75 (PyTorch's `interpolate(mode="bicubic")`);
  * at the border the four taps are clamped to 0..R-1 (edge replication), as PyTorch does;
  * no antialiasing when shrinking (plain point sampling of the cubic interpolant).
At the training size (kh = kw = R) nothing is resampled: `gather_bias` returns the table's own entries.
"""

from __future__ import annotations

from typing import Callable, Optional

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


CUBIC_A = -0.75  # Keys' cubic-convolution parameter, as PyTorch's bicubic interpolation uses


def cubic_weights(t: np.ndarray, a: float = CUBIC_A) -> np.ndarray:
    """Keys' cubic kernel at the four taps floor(x)-1 .. floor(x)+2 for fractions t = x - floor(x). (n,) -> (n, 4)"""
    def near(s):  # |s| <= 1
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def far(s):  # 1 < |s| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    t = np.asarray(t, dtype=np.float64)[:, None]
    return np.concatenate([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)


def resample_matrix(size_in: int, size_out: int) -> np.ndarray:
    """The linear map of 1-D bicubic resampling with align-corners positions and clamped taps. -> (size_out, size_in)

    Row i holds the weights that produce new offset i from the old offsets 0..size_in-1.
    """
    if size_out == 1:
        positions = np.zeros(1)
    else:
        positions = np.arange(size_out) * ((size_in - 1) / (size_out - 1))
    base = np.floor(positions).astype(np.int64)
    weights = cubic_weights(positions - base)  # (size_out, 4)
    taps = np.clip(base[:, None] + np.arange(-1, 3)[None, :], 0, size_in - 1)  # (size_out, 4)
    matrix = np.zeros((size_out, size_in))
    np.add.at(matrix, (np.repeat(np.arange(size_out), 4), taps.ravel()), weights.ravel())
    return matrix


def table_side(table: np.ndarray) -> int:
    """R for a bias table (heads, R*R)."""
    side = int(round(np.sqrt(table.shape[1])))
    if side * side != table.shape[1]:
        raise ValueError(f"attention-bias table has {table.shape[1]} offsets per head, not a square number")
    return side


def resample_table(table: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A bias table (heads, R*R) for offsets (|dy| < rows, |dx| < cols). -> (heads, rows*cols), float32

    Separable bicubic over the (R, R) offset grid (see the module docstring); computed in float64.
    Exactly the input's values when rows = cols = R.
    """
    side = table_side(table)
    if (rows, cols) == (side, side):
        return np.asarray(table)
    grid = np.asarray(table, dtype=np.float64).reshape(-1, side, side)  # (heads, |dy|, |dx|)
    out = resample_matrix(side, rows) @ grid @ resample_matrix(side, cols).T  # (heads, rows, cols)
    return out.reshape(len(grid), rows * cols).astype(np.float32)


def gather_bias(table: np.ndarray, q_grid: tuple[int, int], k_grid: tuple[int, int], stride: int = 1) -> np.ndarray:
    """Expand a bias table (heads, R*R) into the per-pair bias (heads, Nq, Nk) for the given grids.

    A key grid other than R x R (another input size) first resamples the table (`resample_table`); at
    R x R the result is exactly `table[:, attention_bias_idxs]`.
    """
    return resample_table(table, *k_grid)[:, bias_index(q_grid, k_grid, stride)]


class GridBias:
    """One attention block's bias for whatever grids the input gives: gathered once per grid pair, then reused.

    `table` is the block's (heads, R*R) bias table, or None where the model has none (ablation A5: a zero bias
    keeps a single attention kernel). `layout` turns the gathered (heads, Nq, Nk) bias into the layout the
    backend's `attention` kernel takes (identity for the reference; the backend's `prepare` chooses it).
    """

    def __init__(self, table: Optional[np.ndarray], num_heads: int, stride: int,
                 layout: Callable[[np.ndarray], np.ndarray] = np.ascontiguousarray):
        self.table = table
        self.num_heads = num_heads
        self.stride = stride
        self.layout = layout
        self.cache: dict[tuple[tuple[int, int], tuple[int, int]], np.ndarray] = {}

    def at(self, q_grid: tuple[int, int], k_grid: tuple[int, int]) -> np.ndarray:
        """The bias between a q_grid of queries and a k_grid of keys: (h, Nq, Nk), arranged by `layout`."""
        key = (q_grid, k_grid)
        if key not in self.cache:
            if self.table is None:
                bias = np.zeros((self.num_heads, q_grid[0] * q_grid[1], k_grid[0] * k_grid[1]), np.float32)
            else:
                bias = gather_bias(self.table, q_grid, k_grid, self.stride)
            self.cache[key] = self.layout(np.ascontiguousarray(bias, dtype=np.float32))
        return self.cache[key]
