"""Fast kernels: Numba on weights folded once at load (see `levit_np/kernels/fold.py`), no BLAS.

Same names and signatures as `kernels/reference.py`, so `model.forward` runs unchanged on either. What differs:
- `prepare` folds every BatchNorm into its conv/linear, the attention scale into q and the two heads into one,
  and packs every linear's weights for `gemm.py`, a register-blocked Numba sgemm with the bias and Hardswish
  in its epilogue (OpenBLAS repacks the weights on every call; see gemm.py for how the two compare).
- The stem's convolutions run in one parallel Numba kernel each: every job (image, 128 output pixels) builds its
  patches in a per-thread buffer and multiplies them by the packed weights with the sgemm's own per-panel body
  (`gemm.panel_product`); the first conv (27 products per output) runs directly, without patches. No BLAS
  anywhere, whose idle threads would compete with Numba's.
- Attention runs per (image, head) in one Numba kernel: q k^T + bias, softmax, times v, Hardswish. It works on
  transposed score tiles (keys x queries) so every inner loop runs along the queries, contiguous and vectorised.
  `prepare` gives each block's bias in that layout (`bias_layout`, applied once per grid by its `GridBias`).
- A large batch on several threads runs in shards side by side, each on an equal share of the threads (on two
  threads: two shards of one thread each; `run_batch`, see `batch_shards.py`); smaller work shares every
  kernel among the threads.

Numerics: `fastmath={"contract"}` lets LLVM fuse a*b+c into one FMA (one rounding instead of two, so at least
as accurate); no other fast-math flag is used. `exp` is a polynomial (`_exp_shifted`), relative error < 2e-7.
Every reduction runs in a fixed order, so results do not depend on the thread count.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from levit_np.model.config import VARIANTS, LevitConfig, blocks
from levit_np.kernels import gemm, reference
from levit_np.kernels.batch_shards import run_sharded
from levit_np.kernels.backends import is_released_architecture
from levit_np.kernels.numba_common import FASTMATH
from levit_np.kernels.numba_common import hardswish1 as _hardswish1

NAME = "numba"

LOG2E = np.float32(1.4426950408889634)
LN2_HI = np.float32(0.693359375)  # ln 2 split in two so n * LN2_HI is exact for |n| < 2^12 (Cody-Waite)
LN2_LO = np.float32(-2.12194440e-4)
EXP_FLOOR = np.float32(-87.0)  # exp(-87) ~ 1.6e-38, still a normal float32; softmax terms below it vanish


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _hardswish_flat(x, out):
    for i in range(x.shape[0]):
        out[i] = _hardswish1(x[i])


def hardswish(x: np.ndarray) -> np.ndarray:
    """x * relu6(x + 3) / 6, elementwise. Any shape."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    _hardswish_flat(x.reshape(-1), out.reshape(-1))
    return out


GROUP_ROWS = 128  # a linear's rows per parallel job: whole images' tokens, at least this many where the batch allows


def row_groups(batch: int, tokens: int) -> int:
    """How many row groups `linear_bn` splits (batch, tokens) rows into: each group the tokens of a power of two
    of images, doubled until it holds GROUP_ROWS rows or would no longer divide the batch.

    Each parallel job's rows stay in cache while it sweeps the weight panels, and every panel is read once per
    group: at batch 32 the 16-token grid of stage 3 runs as 4 groups of 128 rows, not 32 of 16 (LeViT-128S,
    batch 32, one thread, in-process A/B: 0.97-0.98x the time, the same bits; two threads within noise).
    """
    images = 1
    while images * tokens < GROUP_ROWS and batch % (2 * images) == 0:
        images *= 2
    return batch // images


def linear_bn(x: np.ndarray, layer: dict, activation: bool = False) -> np.ndarray:
    """A folded linear (BatchNorm already inside weight and bias), then Hardswish if asked. (..., Cin) -> (..., Cout)

    Tokens (B, N, C) run in `row_groups(B, N)` groups of rows.
    """
    groups = row_groups(x.shape[0], x.shape[1]) if x.ndim == 3 else 1
    y = gemm.dense(x.reshape(-1, x.shape[-1]), layer, activation, groups=groups)
    return y.reshape(x.shape[:-1] + (y.shape[-1],))


DIRECT_DEPTH = 64  # convs with fewer products per output (Cin*k*k: the 3-channel first conv) run `_conv_direct`
DIRECT_KERNEL = 3  # the stem's convs: 3 x 3, stride 2 (compile-time constants of `_conv_direct`)
DIRECT_STRIDE = 2
DIRECT_PIXELS = 8  # a register block of `_conv_direct`: 8 pixels x 8 channels, eight vector registers on AVX2
DIRECT_CHANNELS = 8
DIRECT_BLOCK = DIRECT_PIXELS * DIRECT_CHANNELS
CONV_CHUNK = 128  # output pixels per parallel job of a conv: its patches stay in L2 while every panel sweeps them
CONV_SIGNATURE = ("void(float32[:, :, :, ::1], float32[:, :, ::1], float32[:, ::1], int64, int64, int64, boolean, "
                  "int64, float32[:, :, ::1])")
DIRECT_SIGNATURE = ("void(float32[:, :, :, ::1], float32[:, ::1], float32[::1], int64, boolean, int64, "
                    "float32[:, :, ::1])")


@njit(inline="always", fastmath=FASTMATH)
def _channels_last_chunk(x, b, p0, p1, out_w, kernel, stride, padding, cols, panels, bias, activation, out):
    """Output pixels p0..p1-1 of image b: their channels-last patches into `cols` (a run of C floats per tap),
    then every weight panel over them. cols (>= p1-p0, k*k*C) scratch; out (B, Ho*Wo, 32P)."""
    height, width, chans = x.shape[1], x.shape[2], x.shape[3]
    for j in range(p1 - p0):
        oy = (p0 + j) // out_w
        y0 = oy * stride - padding
        x0 = (p0 + j - oy * out_w) * stride - padding
        row = cols[j]
        for ky in range(kernel):
            iy = y0 + ky
            for kx in range(kernel):
                ix = x0 + kx
                base = (ky * kernel + kx) * chans
                if 0 <= iy < height and 0 <= ix < width:
                    for c in range(chans):
                        row[base + c] = x[b, iy, ix, c]
                else:
                    for c in range(chans):
                        row[base + c] = 0.0
    patches = cols[:p1 - p0]
    dest = out[b, p0:p1]
    for panel in range(panels.shape[0]):
        gemm.panel_product(patches, panels[panel], bias[panel], activation, dest, panel * gemm.NR)


@njit(cache=True, parallel=True, nogil=True, fastmath=FASTMATH)
def _conv_channels_last(x, panels, bias, kernel, stride, padding, activation, slots, out):
    """out[b, p] = act(patch(b, p) @ W + bias) with channels-last patches, patch[(ky*k + kx)*C + c] =
    x[b, oy*s - p + ky, ox*s - p + kx, c] (0 outside the image) for output pixel p = oy*Wo + ox.

    x (B, H, W, C) any strides, panels (P, k*k*C, 32), bias (P, 32) -> out (B, Ho*Wo, 32P). The jobs are
    (image, CONV_CHUNK output pixels), dealt round-robin to `slots` (the thread count), so each slot's patch buffer
    is its own and stays in cache while every weight panel runs over it. One parallel region per conv.
    """
    batch, _, width, chans = x.shape
    out_w = (width + 2 * padding - kernel) // stride + 1
    points = out.shape[1]
    chunks = -(-points // CONV_CHUNK)
    scratch = np.empty((slots, CONV_CHUNK, kernel * kernel * chans), np.float32)
    for slot in prange(slots):
        for job in range(slot, batch * chunks, slots):
            p0 = (job % chunks) * CONV_CHUNK
            _channels_last_chunk(x, job // chunks, p0, min(p0 + CONV_CHUNK, points), out_w, kernel, stride,
                                 padding, scratch[slot], panels, bias, activation, out)


@njit(cache=True, parallel=True, nogil=True, fastmath=FASTMATH)
def _conv_direct(x, wt, bias, padding, activation, slots, out):
    """The same conv computed directly, for few products per output (the 3-channel first conv: 27): no patches.

    out[b, oy*Wo + ox, o] = act(bias[o] + sum over (c, ky, kx) of x[b, c, oy*S - p + ky, ox*S - p + kx] *
    wt[(c*K + ky)*K + kx, o]), K = DIRECT_KERNEL, S = DIRECT_STRIDE (constants, so every tap's offset is too).
    x (B, C, H, W) C-contiguous, wt (C*K*K, Cout) with Cout a multiple of DIRECT_CHANNELS, bias (Cout,)
    -> out (B, Ho*Wo, Cout). A job is one output row: its C*K input rows are copied into a zero-bordered
    per-slot buffer (so no tap needs a bounds check), then each block of DIRECT_PIXELS pixels x DIRECT_CHANNELS
    channels accumulates in registers (one broadcast-FMA per pixel and tap). Jobs and slots as in
    `_conv_channels_last`.
    """
    batch, chans, height, width = x.shape
    out_w = (width + 2 * padding - DIRECT_KERNEL) // DIRECT_STRIDE + 1
    out_h = (height + 2 * padding - DIRECT_KERNEL) // DIRECT_STRIDE + 1
    cols = (-(-out_w // DIRECT_PIXELS) * DIRECT_PIXELS - 1) * DIRECT_STRIDE + DIRECT_KERNEL  # whole blocks' reach
    inside = min(width, cols - padding)
    scratch = np.zeros((slots, chans * DIRECT_KERNEL, cols), np.float32)  # borders stay zero: the padding
    for slot in prange(slots):
        rows = scratch[slot]
        flat = rows.reshape(-1)
        for job in range(slot, batch * out_h, slots):
            b = job // out_h
            oy = job % out_h
            for c in range(chans):
                for ky in range(DIRECT_KERNEL):
                    iy = oy * DIRECT_STRIDE - padding + ky
                    dest = rows[c * DIRECT_KERNEL + ky, padding:padding + inside]
                    if 0 <= iy < height:  # tested once per row, not per element: the copy vectorises
                        dest[:] = x[b, c, iy, :inside]
                    else:
                        dest[:] = np.float32(0.0)
            for o0 in range(0, wt.shape[1], DIRECT_CHANNELS):
                for ox0 in range(0, out_w, DIRECT_PIXELS):
                    acc = numba.carray(gemm.stack_f32(DIRECT_BLOCK), (DIRECT_PIXELS, DIRECT_CHANNELS))
                    for p in range(DIRECT_PIXELS):
                        for o in range(DIRECT_CHANNELS):
                            acc[p, o] = bias[o0 + o]
                    for row in range(chans * DIRECT_KERNEL):  # unsigned offsets: no wraparound code per tap
                        base = np.uint64(row * cols + ox0 * DIRECT_STRIDE)
                        for kx in range(DIRECT_KERNEL):
                            w = wt[row * DIRECT_KERNEL + kx]
                            for p in range(DIRECT_PIXELS):
                                a = flat[base + np.uint64(kx + DIRECT_STRIDE * p)]
                                for o in range(DIRECT_CHANNELS):
                                    acc[p, o] += a * w[o0 + o]
                    for p in range(min(DIRECT_PIXELS, out_w - ox0)):
                        for o in range(DIRECT_CHANNELS):
                            value = acc[p, o]
                            out[b, oy * out_w + ox0 + p, o0 + o] = _hardswish1(value) if activation else value


def conv_bn(x: np.ndarray, layer: dict, stride: int, padding: int, activation: bool = False) -> np.ndarray:
    """A folded conv in one parallel Numba kernel over (image, a run of output pixels), bias and Hardswish in
    its epilogue.

    Most convs: channels-last patches (pixels x Cin*k*k), built in the kernel, @ packed W^T, by the sgemm's
    per-panel body (`gemm.panel_product`). The first conv (3 input channels: 27 products per output, too few to
    pay for patches) runs directly (`_conv_direct`) on the planar input.
    Either way the output is channels-last: (B, Cin, H, W) -> (B, Cout, Ho, Wo), a view of (B, Ho, Wo, Cout);
    the next conv reads that view as it is (as (B, H, W, C), contiguous per pixel).
    """
    kernel = layer["kernel"]
    b, _, height, width = x.shape
    out_h = (height + 2 * padding - kernel) // stride + 1
    out_w = (width + 2 * padding - kernel) // stride + 1
    if "taps" in layer:
        if (kernel, stride) != (DIRECT_KERNEL, DIRECT_STRIDE):
            raise ValueError(f"the direct conv is built for {DIRECT_KERNEL}x{DIRECT_KERNEL} kernels of stride "
                             f"{DIRECT_STRIDE}, got {kernel}x{kernel} stride {stride}")
        y = np.empty((b, out_h * out_w, layer["taps"].shape[1]), np.float32)
        direct = gemm.compile_vectorised(_conv_direct, DIRECT_SIGNATURE)
        direct(np.ascontiguousarray(x, dtype=np.float32), layer["taps"], layer["bias"], padding, activation,
               numba.get_num_threads(), y)
    else:
        y = np.empty((b, out_h * out_w, layer["panels"].shape[0] * gemm.NR), np.float32)
        channels_last = gemm.compile_vectorised(_conv_channels_last, CONV_SIGNATURE)
        channels_last(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), layer["panels"], layer["bias"], kernel, stride,
                      padding, activation, numba.get_num_threads(), y)
    y = y[..., :layer["n"]]
    return y.reshape(b, out_h, out_w, -1).transpose(0, 3, 1, 2)


@njit(cache=True, fastmath=FASTMATH)
def _accumulate_products(a, b, c):
    """c += a @ b for a short inner dimension and long rows: c (R, n) += a (R, T) @ b (T, n).

    Blocked 4 rows x 4 terms so each loaded row of b feeds four rows of c; the inner loop runs along n.
    """
    rows, terms = a.shape
    r4 = rows - rows % 4
    t4 = terms - terms % 4
    for r in range(0, r4, 4):
        c0 = c[r]
        c1 = c[r + 1]
        c2 = c[r + 2]
        c3 = c[r + 3]
        for t in range(0, t4, 4):
            b0 = b[t]
            b1 = b[t + 1]
            b2 = b[t + 2]
            b3 = b[t + 3]
            a00, a01, a02, a03 = a[r, t], a[r, t + 1], a[r, t + 2], a[r, t + 3]
            a10, a11, a12, a13 = a[r + 1, t], a[r + 1, t + 1], a[r + 1, t + 2], a[r + 1, t + 3]
            a20, a21, a22, a23 = a[r + 2, t], a[r + 2, t + 1], a[r + 2, t + 2], a[r + 2, t + 3]
            a30, a31, a32, a33 = a[r + 3, t], a[r + 3, t + 1], a[r + 3, t + 2], a[r + 3, t + 3]
            for i in range(c0.shape[0]):
                x0, x1, x2, x3 = b0[i], b1[i], b2[i], b3[i]
                c0[i] += (a00 * x0 + a01 * x1) + (a02 * x2 + a03 * x3)
                c1[i] += (a10 * x0 + a11 * x1) + (a12 * x2 + a13 * x3)
                c2[i] += (a20 * x0 + a21 * x1) + (a22 * x2 + a23 * x3)
                c3[i] += (a30 * x0 + a31 * x1) + (a32 * x2 + a33 * x3)
        for t in range(t4, terms):
            _axpy_rows(a, b, c, r, r + 4, t)
    for t in range(terms):
        _axpy_rows(a, b, c, r4, rows, t)


@njit(cache=True, fastmath=FASTMATH)
def _axpy_rows(a, b, c, r_begin, r_end, t):
    """c[r] += a[r, t] * b[t] for r in [r_begin, r_end): the remainder rows and terms of the blocked product."""
    bt = b[t]
    for r in range(r_begin, r_end):
        coef = a[r, t]
        cr = c[r]
        for i in range(cr.shape[0]):
            cr[i] += coef * bt[i]


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the int32 `bits` (an LLVM bitcast: no instruction of its own)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@njit(cache=True, fastmath=FASTMATH)
def _exp_shifted(row, shift):
    """In place: row[i] = exp(row[i] - shift[i]) for row <= shift (softmax numerators); vectorises.

    exp(y) = 2^n * exp(r), n = round(y / ln 2), r = y - n ln 2 in [-ln2/2, ln2/2]; exp(r) by its degree-7
    Taylor polynomial (truncation < 5e-9), 2^n built in the exponent bits of a float (`_float_from_bits`).
    y is clamped at -87 so 2^n stays a normal number.
    """
    for i in range(row.shape[0]):
        y = np.maximum(row[i] - shift[i], EXP_FLOOR)
        n = np.floor(y * LOG2E + np.float32(0.5))
        r = y - n * LN2_HI - n * LN2_LO
        p = np.float32(1.0 / 5040.0)
        p = p * r + np.float32(1.0 / 720.0)
        p = p * r + np.float32(1.0 / 120.0)
        p = p * r + np.float32(1.0 / 24.0)
        p = p * r + np.float32(1.0 / 6.0)
        p = p * r + np.float32(0.5)
        p = p * r + np.float32(1.0)
        row[i] = (p * r + np.float32(1.0)) * _float_from_bits(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))


@njit(cache=True, fastmath=FASTMATH)
def _attention_head(q, k, v, bias_t, scale, activation, out):
    """One head: out[i, e] = act(sum_j softmax_j(scale q_i . k_j + bias[i, j]) v[j, e]).

    q (Nq, kd), k (Nk, kd), v (Nk, d), bias_t (Nk, W) = the bias transposed, its Nq columns zero-padded to
    W, a multiple of QUERY_PAD; out (Nq, d), any strides. Scores are kept transposed, s_t (Nk, W), so the softmax
    over keys is an elementwise max/sum over rows; the padding lanes are computed and never stored, so every row
    runs in whole vectors (no scalar remainder per row of 196 or 49 queries).
    """
    n_q, key_dim = q.shape
    n_k, value_dim = v.shape
    width = bias_t.shape[1]
    q_t = np.zeros((key_dim, width), np.float32)
    for c in range(key_dim):
        for i in range(n_q):
            q_t[c, i] = q[i, c] * scale
    s_t = bias_t.copy()  # (Nk, W)
    _accumulate_products(k, q_t, s_t)
    peak = s_t[0].copy()
    for j in range(1, n_k):
        for i in range(width):  # np.maximum, not max(): Numba's max() of two floats keeps the loop scalar
            peak[i] = np.maximum(peak[i], s_t[j, i])
    total = np.zeros(width, np.float32)
    for j in range(n_k):
        _exp_shifted(s_t[j], peak)
        for i in range(width):
            total[i] += s_t[j, i]
    o_t = np.zeros((value_dim, width), np.float32)
    _accumulate_products(v.T, s_t, o_t)  # (d, W) = v^T (d, Nk) @ s_t (Nk, W)
    for i in range(n_q):
        inv = np.float32(1.0) / total[i]
        for e in range(value_dim):
            val = o_t[e, i] * inv
            out[i, e] = _hardswish1(val) if activation else val


@njit(cache=True, parallel=True, nogil=True, fastmath=FASTMATH)
def _attention(q, k, v, bias_t, scale, activation, out):
    """Every (image, head) in parallel. q (B, h, Nq, kd), k (B, h, Nk, kd), v (B, h, Nk, d), bias_t (h, Nk, W)
    -> out (B, Nq, h*d), head-major channels."""
    batch, heads = q.shape[0], q.shape[1]
    value_dim = v.shape[3]
    for job in prange(batch * heads):
        b = job // heads
        h = job % heads
        _attention_head(q[b, h], k[b, h], v[b, h], bias_t[h], scale, activation,
                        out[b, :, h * value_dim:(h + 1) * value_dim])


QUERY_PAD = 8  # `attention`'s score rows are padded to whole 8-float vectors (in-process A/B: 0.90-0.97x the time)


def bias_layout(bias: np.ndarray) -> np.ndarray:
    """The layout `attention` takes its bias in: (h, Nq, Nk) -> (h, Nk, W), transposed, its Nq columns zero-padded
    to W, the next multiple of QUERY_PAD. Applied once per grid."""
    heads, n_q, n_k = bias.shape
    out = np.zeros((heads, n_k, -(-n_q // QUERY_PAD) * QUERY_PAD), np.float32)
    out[:, :, :n_q] = bias.transpose(0, 2, 1)
    return out


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray, scale: float,
              activation: bool = True) -> np.ndarray:
    """softmax(q k^T * scale + bias) v per head, heads concatenated, then Hardswish.

    q (B, h, Nq, kd), k (B, h, Nk, kd), v (B, h, Nk, d) (strided views are fine), bias (h, Nk, W) as `prepare`'s
    `GridBias` lays it out (`bias_layout`) -> (B, Nq, h*d). With folded weights the scale is in q and `scale` is 1.
    """
    b, h, n_q, _ = q.shape
    out = np.empty((b, n_q, h * v.shape[3]), np.float32)
    _attention(q, k, v, bias, np.float32(scale), activation, out)
    return out


def classifier(x: np.ndarray, layer: dict) -> np.ndarray:
    """Both heads as one linear: `prepare` merged them (`fold.merge_heads`). (B, C) -> (B, classes)"""
    return np.ascontiguousarray(gemm.dense(x, layer))


def run_batch(run, x: np.ndarray) -> np.ndarray:
    """run(x) for a whole forward pass `run`: a large batch on several threads in shards side by side."""
    return run_sharded(run, x)


layernorm = reference.layernorm  # the A3 ablation's kernel, in NumPy: the fast path runs the released models only


def _dense_layer(layer: dict) -> dict:
    """A folded linear as `gemm.dense` reads it: W^T in 32-column panels."""
    return gemm.pack(layer["weight"], layer["bias"])


def _conv_layer(layer: dict) -> dict:
    """A folded conv as `conv_bn` reads it: packed like `gemm.pack`, rows of W ordered (ky, kx, c) like
    `_conv_channels_last`'s patches; or, below DIRECT_DEPTH products per output, for `_conv_direct`: its taps
    W^T (Cin*k*k, Cout) and bias, both zero-padded to whole blocks of DIRECT_CHANNELS."""
    weight = layer["weight"]  # (Cout, Cin, k, k)
    cout, cin, kernel, _ = weight.shape
    if cin * kernel * kernel < DIRECT_DEPTH:
        width = -(-cout // DIRECT_CHANNELS) * DIRECT_CHANNELS
        taps = np.zeros((cin * kernel * kernel, width), np.float32)
        taps[:, :cout] = weight.reshape(cout, -1).T
        bias = np.zeros(width, np.float32)
        bias[:cout] = layer["bias"]
        return {"taps": taps, "bias": bias, "n": cout, "kernel": kernel}
    packed = gemm.pack(weight.transpose(0, 2, 3, 1).reshape(cout, -1), layer["bias"])
    return {**packed, "kernel": kernel}


class UnsupportedConfig(ValueError):
    """The fast backend runs the released LeViT architectures only (no ablations)."""


def check_supported(cfg: LevitConfig) -> None:
    """Raise UnsupportedConfig unless `cfg` is one of the five released variants (any class count or image size)."""
    if is_released_architecture(cfg):
        return
    raise UnsupportedConfig(f"the numba backend runs only the released LeViT variants ({', '.join(VARIANTS)}); "
                            f"config {cfg.name!r} differs from all of them: use backend='numpy'")


def prepare(cfg: LevitConfig, params: dict) -> dict:
    """Fold the checkpoint once (BatchNorm, attention scale, the two heads) and lay the weights out for the kernels.

    Every `<block>.scale` is 1.0: kd^-0.5 is inside the q rows. `<block>.bias` gathers in `bias_layout`.
    `classifier` is the two heads merged into one packed linear.
    """
    from levit_np.kernels.fold import fold_model
    from levit_np.model.attention_bias import GridBias

    check_supported(cfg)
    folded = fold_model(cfg, params)
    layers: dict = {}
    for name, layer in folded.items():
        if name.endswith(".attention_biases") or name == "head":
            continue
        layers[name] = _conv_layer(layer) if layer["weight"].ndim == 4 else _dense_layer(layer)
    for block in blocks(cfg):
        if block.kind.has_attention:
            layers[f"{block.name}.scale"] = 1.0
            table = np.ascontiguousarray(folded[f"{block.name}.attention_biases"], dtype=np.float32)
            layers[f"{block.name}.bias"] = GridBias(table, block.num_heads, block.bias_stride, layout=bias_layout)
    layers["classifier"] = _dense_layer(folded["head"])
    return layers


def set_threads(threads: int) -> None:
    """Threads for the Numba kernels (at most NUMBA_NUM_THREADS, fixed when Numba was imported)."""
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


if os.environ.get("LEVIT_THREADS", "").isdigit():
    set_threads(int(os.environ["LEVIT_THREADS"]))
