"""out = act(x @ W + b) for LeViT's linears: a register-blocked sgemm in Numba on weights packed once at load.

Why not BLAS: at batch 1 LeViT's products have 16, 49 or 196 rows. OpenBLAS repacks the whole weight matrix on
every call, which at these sizes costs about as much as the product (measured on a Zen 4 CPU: 53-78 GFLOP/s with
cold weights). Here W is packed at load into panels of 32 columns, (ceil(N/32), K, 32), each streamed once per
call; there the kernel reached 85-110 GFLOP/s at the same sizes and 110+ at batch 32 (one core; peak ~115).

How: each (MR rows x 32 columns) output block accumulates over K in a stack buffer (`stack_f32`). Its loops have
constant trip counts, so LLVM unrolls them, keeps the block in eight vector registers and turns each k step into
one broadcast-FMA per register. MR follows the vector width the kernels are compiled for: 4 rows with AVX-512
(eight 16-float registers of 32), 2 rows with AVX2 (eight 8-float registers of 16). A 4-row block on AVX2 needs
16 accumulators, every register the CPU has, and spills: measured on an AMD EPYC (Zen 3, AVX2), one core,
products of LeViT-128S's shapes at batch 1 and 32, 36-45 GFLOP/s with 4 rows against 59-69 with 2. (4 x 16
blocks, also eight registers, were faster alone but slower in the whole model, the convs most.)
The broadcast-FMA step is LLVM's SLP vectoriser, which Numba leaves off by default (numba PR 8852:
miscompilations elsewhere), so it is switched on only while the kernels that inline the per-panel body
(`panel_product`: this sgemm and the stem convs) compile, and they are checked against NumPy in
tests/test_fast_kernels.py. Panels (and groups of rows) run in parallel (prange).

Order: with several groups of rows (batch > 1) each panel serves every group and mostly comes from cache, and
each block of rows sweeps the whole panel (`panel_product`). With one group of few rows (batch 1, stages 2 and 3:
49 and 16 rows) every panel is read once per call, from memory, for little work: there the panel goes slice by
slice through every block of rows, asking for the slices ahead while it computes (`panel_product_streamed`). At
batch 1 on one thread a LeViT-128S linear of 16 rows ran 1.5-2x its time with the panels in cache before, the
whole model 0.86-0.96x its time after (in-process A/Bs). Stage 1's 196 rows at batch 1 sweep the panel again
(STREAMED_ROWS): each panel (16-32 KB) does 4x the work there, and the swept order keeps each block's sums in
registers over the whole depth; the model 0.91-1.03x its time that way (seven in-process A/Bs, median 0.96x).

Summation: blocked. Each run of KC = 64 products is summed in a second, zeroed register block, then added to
the running sum, so a rounding error grows with K/64 + 64 instead of K. Measured against the float64 reference
(`levit_np/perf/truth.py`, LeViT-128S): the whole fast path's distance fell from 8.8e-7 to 2.7e-7 (the numpy
float32 reference: 4.0e-7), the classifier's (K = 384) from 7.4e-7 to 1.9e-7, at the same speed. The order is
fixed: the result does not depend on the thread count.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import intrinsic

from levit_np.kernels.numba_common import FASTMATH, hardswish1, vector_floats

NR = 32  # columns of an output block = width of a weight panel (two AVX-512 or four AVX2 registers)
MR = 4 if vector_floats() == 16 else 2  # rows of an output block: eight vector registers of accumulators
BLOCK = MR * NR
KC = 64  # products summed in a fresh register block before joining the running sum (blocked summation)
SIGNATURE = "void(float32[:, :, ::1], float32[:, :, ::1], float32[:, ::1], boolean, float32[:, :, ::1])"


@intrinsic
def stack_f32(typingctx, size):
    """A pointer to `size` float32 on the stack (an LLVM alloca); `size` must be a compile-time constant."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    count = size.literal_value

    def codegen(context, builder, signature, args):
        buffer = cgutils.alloca_once(builder, ir.ArrayType(ir.FloatType(), count))
        return builder.bitcast(buffer, ir.PointerType(ir.FloatType()))

    return types.CPointer(types.float32)(size), codegen


@intrinsic
def prefetch(typingctx, array, offset):
    """Ask the CPU to bring the cache line holding the float32 `offset` floats past `array`'s first element into
    its caches (LLVM's prefetch: a hint; it never faults, even past the end of the array)."""
    if not (isinstance(array, types.Array) and isinstance(offset, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        bytes_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [bytes_pointer, i32, i32, i32]), "llvm.prefetch.p0i8")
        read, keep_in_all_levels, data_cache = i32(0), i32(3), i32(1)
        builder.call(hint, [builder.bitcast(builder.gep(data, [args[1]]), bytes_pointer), read, keep_in_all_levels,
                            data_cache])
        return context.get_dummy_value()

    return types.void(array, offset), codegen


@njit(inline="always", fastmath=FASTMATH)
def panel_product(x, w, b, activation, out, c0):
    """out[:, c0:c0+32] = act(x @ w + b) for one weight panel: x (M, K), w (K, 32), b (32,) -> out (M, >= c0+32).
    Serial; inlined into each caller (Numba IR inlining, so LLVM sees the loops exactly as written here).

    Its helpers are inlined at Numba's IR level too, so LLVM sees one loop nest. Keep the loop structure: with
    helpers that are not inlined, or row ranges computed differently, LLVM no longer keeps the block in
    registers (measured 30-50x slower). The k loops run over unsigned integers: with a signed k that
    LLVM cannot prove non-negative, every x[., k] and w[k, .] pays Numba's negative-index wraparound (a shift,
    an and, an add, and a multiply for the row offset, per k): 1.2-1.4x slower on AVX2 (Zen 3), same bits.
    """
    rows, depth = x.shape
    for block in range(rows // MR):
        r0 = block * MR
        acc = numba.carray(stack_f32(BLOCK), (MR, NR))
        part = numba.carray(stack_f32(BLOCK), (MR, NR))
        for r in range(MR):
            for i in range(NR):
                acc[r, i] = b[i]
        for k0 in range(0, depth, KC):
            _slice_sum(x, w, part, r0, k0, min(k0 + KC, depth), 0, 0)
            for r in range(MR):
                for i in range(NR):
                    acc[r, i] += part[r, i]
        _store_block(acc, activation, out, r0, c0)
    _remainder_rows(x, w, b, activation, out, c0)


@njit(inline="always", fastmath=FASTMATH)
def _slice_sum(x, w, part, r0, k0, k1, prefetch_start, prefetches):
    """part (MR, 32) = x[r0:r0+MR, k0:k1] @ w[k0:k1], one broadcast-FMA per row and k step; the first
    `prefetches` k steps also ask for one cache line each, from `prefetch_start` floats into `w` onwards."""
    for r in range(MR):
        for i in range(NR):
            part[r, i] = 0.0
    for k in range(np.uint64(k0), np.uint64(k1)):  # unsigned: see panel_product
        step = k - np.uint64(k0)
        if step < np.uint64(prefetches):
            prefetch(w, np.uint64(prefetch_start) + step * np.uint64(LINE_FLOATS))
        for r in range(MR):
            a = x[r0 + r, k]
            for i in range(NR):
                part[r, i] += a * w[k, i]


@njit(inline="always", fastmath=FASTMATH)
def _store_block(acc, activation, out, r0, c0):
    """out[r0:r0+MR, c0:c0+32] = acc (MR, 32), through Hardswish if `activation`."""
    if activation:
        for r in range(MR):
            for i in range(NR):
                acc[r, i] = hardswish1(acc[r, i])
    for r in range(MR):
        for i in range(NR):
            out[r0 + r, c0 + i] = acc[r, i]


@njit(inline="always", fastmath=FASTMATH)
def _remainder_rows(x, w, b, activation, out, c0):
    """The last rows % MR rows of `panel_product`'s product, one at a time, summed in the same order."""
    rows, depth = x.shape
    for r0 in range(rows - rows % MR, rows):
        acc1 = numba.carray(stack_f32(NR), NR)
        part1 = numba.carray(stack_f32(NR), NR)
        for i in range(NR):
            acc1[i] = b[i]
        for k0 in range(0, depth, KC):
            for i in range(NR):
                part1[i] = 0.0
            for k in range(np.uint64(k0), np.uint64(min(k0 + KC, depth))):
                a = x[r0, k]
                for i in range(NR):
                    part1[i] += a * w[k, i]
            for i in range(NR):
                acc1[i] += part1[i]
        if activation:
            for i in range(NR):
                acc1[i] = hardswish1(acc1[i])
        for i in range(NR):
            out[r0, c0 + i] = acc1[i]


STREAMED_ROWS = 64  # one group of at most this many rows runs `panel_product_streamed`; more rows sweep the panel
PREFETCH_SLICES = 3  # how far ahead `panel_product_streamed` asks for the panel: 3 slices of KC x 32 floats (24 KB)
LINE_FLOATS = 16  # float32 in a 64-byte cache line


@njit(inline="always", fastmath=FASTMATH)
def panel_product_streamed(x, w, b, activation, out, c0):
    """`panel_product` in the order for a panel read once per call, from memory (batch 1: cold weights).

    The same sums in the same order, so the same bits; the loops swapped: for each slice of KC rows of the panel
    (8 KB), every block of rows, so the slice is fetched once and then read from L1. While they run, the blocks
    spread prefetches of the slice PREFETCH_SLICES ahead (past this panel's end: the next panel, which follows
    it in memory) over their k steps, so the next slices arrive while this one is multiplied. Each block's running
    sum waits in `out` between slices. LeViT-128S and LeViT-256 at batch 1, one thread, in-process A/Bs:
    0.86-0.96x the whole model's time. At batch 32, where every panel serves many groups of rows, the other order
    stays: this one for every group made the model 1.08-1.12x slower there on two threads.
    """
    rows, depth = x.shape
    blocks = rows // MR
    slice_lines = KC * NR // LINE_FLOATS
    lines_per_block = -(-slice_lines // max(1, blocks))
    for k0 in range(0, depth, KC):
        k1 = min(k0 + KC, depth)
        ahead = (k0 + PREFETCH_SLICES * KC) * NR
        for block in range(blocks):
            r0 = block * MR
            part = numba.carray(stack_f32(BLOCK), (MR, NR))
            first_line = block * lines_per_block
            _slice_sum(x, w, part, r0, k0, k1, ahead + first_line * LINE_FLOATS,
                       max(0, min(lines_per_block, slice_lines - first_line)))
            for r in range(MR):
                for i in range(NR):
                    part[r, i] += b[i] if k0 == 0 else out[r0 + r, c0 + i]
            _store_block(part, activation and k1 == depth, out, r0, c0)
    _remainder_rows(x, w, b, activation, out, c0)


@njit(cache=True, parallel=True, nogil=True, fastmath=FASTMATH)
def _gemm_panels(xs, panels, bias, activation, outs):
    """outs[g][:, 32j:32j+32] = act(xs[g] @ panels[j] + bias[j]) for every group g of rows and panel j.

    xs (G, M, K), panels (P, K, 32), bias (P, 32) -> outs (G, M, 32P); the G*P jobs run in parallel.
    """
    n_panels = panels.shape[0]
    streamed = xs.shape[0] == 1 and xs.shape[1] <= STREAMED_ROWS  # each panel used once, by few rows
    for job in prange(xs.shape[0] * n_panels):
        panel = job % n_panels
        group = job // n_panels
        if streamed:
            panel_product_streamed(xs[group], panels[panel], bias[panel], activation, outs[group], panel * NR)
        else:
            panel_product(xs[group], panels[panel], bias[panel], activation, outs[group], panel * NR)


def compile_vectorised(dispatcher, signature: str):
    """`dispatcher` compiled (or loaded from Numba's cache) for `signature` only, with the SLP vectoriser on:
    for every kernel that inlines `panel_product`. Further compiling is disabled; returns the dispatcher.

    Under Numba's compiler lock, so that threads arriving at once (the batch's shards, `batch_shards.py`)
    compile it once, and no other kernel compiles while the vectoriser is switched on."""
    if dispatcher.overloads:
        return dispatcher  # compiled: the call's own path takes no lock
    with global_compiler_lock:
        if not dispatcher.overloads:
            previous = numba.config.SLP_VECTORIZE
            numba.config.SLP_VECTORIZE = 1
            try:
                dispatcher.compile(signature)
            finally:
                numba.config.SLP_VECTORIZE = previous
            dispatcher.disable_compile()
    return dispatcher


def _kernel():
    """The kernel, compiled (or loaded from Numba's cache) once with the SLP vectoriser on, for SIGNATURE only."""
    return compile_vectorised(_gemm_panels, SIGNATURE)


def pack(weight: np.ndarray, bias: np.ndarray) -> dict:
    """A linear y = x W^T + b, W (N, K), as the kernel reads it: 32-column panels of W^T, zero-padded.

    -> {"panels": (ceil(N/32), K, 32), "bias": (ceil(N/32), 32), "n": N}
    """
    n, k = weight.shape
    count = -(-n // NR)
    padded = np.zeros((count * NR, k), np.float32)
    padded[:n] = weight
    padded_bias = np.zeros(count * NR, np.float32)
    padded_bias[:n] = bias
    panels = np.ascontiguousarray(padded.reshape(count, NR, k).transpose(0, 2, 1))
    return {"panels": panels, "bias": padded_bias.reshape(count, NR), "n": n}


def dense(x: np.ndarray, packed: dict, activation: bool = False, groups: int = 1) -> np.ndarray:
    """act(x @ W^T + b) with a layer from `pack`; Hardswish if `activation`. (M, K) -> (M, N)

    `groups` (dividing M) splits the rows into that many parallel jobs per panel: for tall, narrow products.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    panels = packed["panels"]
    width = panels.shape[0] * NR
    rows = x.shape[0] // groups
    out = np.empty((groups, rows, width), np.float32)
    _kernel()(x.reshape(groups, rows, x.shape[1]), panels, packed["bias"], bool(activation), out)
    out = out.reshape(x.shape[0], width)
    return out if width == packed["n"] else out[:, :packed["n"]]
