"""The Numba fast path against the NumPy reference: folding, every fast kernel on edge shapes, whole models.

Each fast kernel gets the reference kernel's inputs (folded where the fast path folds) and must give its output
within float32 reordering error. The whole model must match on all five variants within 1e-4 * max|ref|.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import levit_np
from levit_np.kernels import fold
from levit_np.model.attention_bias import gather_bias
from levit_np.model.config import VARIANTS, blocks, get_config
from levit_np.kernels import fast, gemm
from levit_np.kernels import reference as ref
from levit_np.model.params import group_layers, random_params

from conftest import assert_close_relative

KERNEL_REL = 2e-6  # one kernel, float32: a few ulps of the largest output
MODEL_REL = 1e-4  # the bound for a whole model: max|diff| <= 1e-4 * max|ref|


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(4)


@pytest.fixture(scope="module")
def layers_128s():
    """The reference layers of a random LeViT-128S (random BN statistics and attention biases)."""
    cfg = get_config("128s")
    return group_layers(cfg, random_params(cfg, seed=3))


def normal(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- folding, layer by layer


@pytest.mark.parametrize("name", ["stages.0.blocks.0.mlp.fc1", "stages.1.downsample.attn.proj", "stages.2.blocks.3.mlp.fc2"])
def test_fold_linear_bn(layers_128s, rng, name):
    layer = layers_128s[name]
    folded = fold.fold_bn_after(layer)
    x = normal(rng, 3, 7, layer["weight"].shape[1])
    err = assert_close_relative(x @ folded["weight"].T + folded["bias"], ref.linear_bn(x, layer), KERNEL_REL, name)
    print(f"{name}: folded linear vs linear+BN {err:.2e}")


@pytest.mark.parametrize("name", ["stem.conv1", "stem.conv4"])
def test_fold_conv_bn(layers_128s, rng, name):
    layer = layers_128s[name]
    folded = fold.fold_bn_after(layer)
    x = normal(rng, 2, layer["weight"].shape[1], 9, 9)
    no_bn = {"weight": folded["weight"], "bn.weight": np.ones_like(folded["bias"]), "bn.bias": folded["bias"],
             "bn.running_mean": np.zeros_like(folded["bias"]), "bn.running_var": np.full_like(folded["bias"], 1 - 1e-5)}
    got = ref.conv_bn(x, no_bn, stride=2, padding=1)  # the folded conv, through the reference conv (BN = +bias)
    err = assert_close_relative(got, ref.conv_bn(x, layer, stride=2, padding=1), KERNEL_REL, name)
    print(f"{name}: folded conv vs conv+BN {err:.2e}")


def test_fold_head_and_merge(layers_128s, rng):
    x = normal(rng, 5, 384)
    for name in ("head", "head_dist"):
        folded = fold.fold_bn_before(layers_128s[name])
        err = assert_close_relative(x @ folded["weight"].T + folded["bias"], ref.bn_linear(x, layers_128s[name]),
                                    KERNEL_REL, name)
        print(f"{name}: BN folded into the linear {err:.2e}")
    merged = fold.merge_heads(fold.fold_bn_before(layers_128s["head"]), fold.fold_bn_before(layers_128s["head_dist"]))
    expected = ref.classifier(x, {"head": layers_128s["head"], "head_dist": layers_128s["head_dist"]})
    err = assert_close_relative(x @ merged["weight"].T + merged["bias"], expected, KERNEL_REL, "merged heads")
    print(f"two heads merged into one: {err:.2e}")


def test_query_rows_are_head_interleaved():
    np.testing.assert_array_equal(fold.query_rows(3, 5, 2), [0, 1, 5, 6, 10, 11])
    np.testing.assert_array_equal(fold.query_rows(2, 4, 4), np.arange(8))


@pytest.mark.parametrize("kind", ["attn", "down"])
def test_fold_query_scale_matches_scaled_scores(rng, kind):
    """softmax((x Wq^T) (x Wk^T)^T * kd^-0.5) equals the scores from the scale-folded q rows."""
    cfg = get_config("128s")
    params = random_params(cfg, seed=5)
    layers = group_layers(cfg, params)
    folded = fold.fold_model(cfg, params)
    block = next(b for b in blocks(cfg) if b.kind == kind)
    h, kd, d = block.num_heads, block.key_dim, block.value_dim
    x = normal(rng, 2, 11, block.dim_in)
    if kind == "attn":
        q_ref = ref.linear_bn(x, layers[f"{block.name}.qkv"]).reshape(2, 11, h, 2 * kd + d)[..., :kd]
        layer = folded[f"{block.name}.qkv"]
        q_fold = (x @ layer["weight"].T + layer["bias"]).reshape(2, 11, h, 2 * kd + d)[..., :kd]
    else:
        q_ref = ref.linear_bn(x, layers[f"{block.name}.q"]).reshape(2, 11, h, kd)
        layer = folded[f"{block.name}.q"]
        q_fold = (x @ layer["weight"].T + layer["bias"]).reshape(2, 11, h, kd)
    err = assert_close_relative(q_fold, q_ref * np.float32(kd ** -0.5), KERNEL_REL, f"{kind} q rows")
    print(f"{kind}: scale folded into q {err:.2e}")


# ---------------------------------------------------------------- kernels against the reference


@pytest.mark.parametrize("batch,tokens,cin,cout,activation", [(1, 16, 384, 768, True), (3, 49, 256, 192, False),
                                                               (1, 1, 7, 5, True), (2, 13, 33, 17, False)])
def test_linear_bn(layers_128s, rng, batch, tokens, cin, cout, activation):
    layer = {"weight": normal(rng, cout, cin) / np.sqrt(cin), "bn.weight": rng.uniform(0.5, 1.5, cout).astype(np.float32),
             "bn.bias": normal(rng, cout) * 0.1, "bn.running_mean": normal(rng, cout) * 0.2,
             "bn.running_var": rng.uniform(0.5, 2, cout).astype(np.float32)}
    x = normal(rng, batch, tokens, cin)
    got = fast.linear_bn(x, fast._dense_layer(fold.fold_bn_after(layer)), activation=activation)
    err = assert_close_relative(got, ref.linear_bn(x, layer, activation=activation), KERNEL_REL, "linear_bn")
    print(f"linear_bn {x.shape} -> {cout} act={activation}: {err:.2e}")


@pytest.mark.parametrize("batch,cin,cout,size,activation", [(1, 3, 16, 224, True), (3, 5, 8, 13, True),
                                                            (2, 3, 12, 10, False), (2, 16, 32, 7, False),
                                                            (1, 64, 128, 2, False)])
def test_conv_bn(layers_128s, rng, batch, cin, cout, size, activation):
    layer = {"weight": normal(rng, cout, cin, 3, 3) / np.sqrt(9 * cin),
             "bn.weight": rng.uniform(0.5, 1.5, cout).astype(np.float32), "bn.bias": normal(rng, cout) * 0.1,
             "bn.running_mean": normal(rng, cout) * 0.2, "bn.running_var": rng.uniform(0.5, 2, cout).astype(np.float32)}
    x = normal(rng, batch, cin, size, size)
    fast_layer = fast._conv_layer(fold.fold_bn_after(layer))
    expected = ref.conv_bn(x, layer, stride=2, padding=1, activation=activation)
    got = fast.conv_bn(x, fast_layer, stride=2, padding=1, activation=activation)
    err = assert_close_relative(got, expected, KERNEL_REL, "conv_bn (NCHW input)")
    strided = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # same values, other strides
    got_strided = fast.conv_bn(strided, fast_layer, stride=2, padding=1, activation=activation)
    assert_close_relative(got_strided, expected, KERNEL_REL, "conv_bn (strided input)")
    print(f"conv_bn {x.shape} -> {expected.shape} act={activation}: {err:.2e}")


def test_direct_conv_refuses_other_kernels_and_strides(rng):
    """The direct first-conv kernel has the stem's 3x3 stride-2 window compiled in: anything else is an error."""
    layer = fast._conv_layer({"weight": normal(rng, 8, 3, 3, 3), "bias": normal(rng, 8)})
    assert "taps" in layer  # 27 products per output: the direct path
    with pytest.raises(ValueError, match="3x3 kernels of stride 2"):
        fast.conv_bn(normal(rng, 1, 3, 8, 8), layer, stride=1, padding=1)


@pytest.mark.parametrize("rows,depth,cols,groups,activation", [(16, 384, 768, 1, True), (49, 256, 192, 1, False),
                                                               (1, 7, 1000, 1, False), (6, 27, 16, 2, True),
                                                               (3, 5, 33, 3, True)])
def test_packed_gemm(rng, rows, depth, cols, groups, activation):
    """gemm.dense against float64 NumPy: padded panels, leftover rows (M % MR), row groups, both epilogues."""
    x, weight, bias = normal(rng, rows, depth), normal(rng, cols, depth) / np.sqrt(depth), normal(rng, cols)
    expected = x.astype(np.float64) @ weight.T.astype(np.float64) + bias
    if activation:
        expected = ref.hardswish(expected)
    got = gemm.dense(x, gemm.pack(weight, bias), activation, groups=groups)
    err = assert_close_relative(got, expected, KERNEL_REL, "gemm")
    print(f"gemm ({rows}x{depth}) @ ({depth}x{cols}) act={activation}: {err:.2e}")


@pytest.mark.parametrize("rows,depth,cols,activation", [(16, 384, 768, True), (49, 200, 100, False),
                                                      (1, 7, 40, True), (63, 64, 64, False)])
def test_streamed_order_changes_no_bit(rng, rows, depth, cols, activation):
    """One group of at most STREAMED_ROWS rows runs `panel_product_streamed` (slices of the panel through every
    block of rows, with prefetches past the panel's end), several groups `panel_product`: the same sums in the
    same order."""
    assert rows <= gemm.STREAMED_ROWS
    x, weight, bias = normal(rng, rows, depth), normal(rng, cols, depth), normal(rng, cols)
    layer = gemm.pack(weight, bias)
    streamed = gemm.dense(x, layer, activation, groups=1)
    swept = gemm.dense(np.concatenate([x, x]), layer, activation, groups=2)
    np.testing.assert_array_equal(streamed, swept[:rows])
    np.testing.assert_array_equal(streamed, swept[rows:])


@pytest.mark.parametrize("batch,tokens,groups", [(32, 196, 32), (32, 49, 8), (32, 16, 4), (1, 16, 1), (6, 16, 3),
                                                 (5, 49, 5), (64, 4, 2)])
def test_row_groups_gather_whole_images(batch, tokens, groups):
    assert fast.row_groups(batch, tokens) == groups


def test_linear_bn_row_groups_change_no_bit(rng):
    """Grouping the rows changes which job computes a row, never how: the same bits as one group."""
    x, weight, bias = normal(rng, 6, 16, 40), normal(rng, 72, 40), normal(rng, 72)
    layer = gemm.pack(weight, bias)
    assert fast.row_groups(6, 16) == 3
    grouped = fast.linear_bn(x, layer, activation=True)
    whole = gemm.dense(x.reshape(96, 40), layer, True, groups=1).reshape(6, 16, 72)
    np.testing.assert_array_equal(grouped, whole)


def test_levit_threads_sets_numba_threads():
    code = "import numba, levit_np.kernels.fast; print(numba.get_num_threads())"
    env = {**os.environ, "LEVIT_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1"


ATTENTION_SHAPES = {  # (B, heads, query grid, key grid, stride, kd, d)
    "stage1, B=1": (1, 4, (14, 14), (14, 14), 1, 16, 32),
    "shrink 14->7, B=3": (3, 8, (7, 7), (14, 14), 2, 16, 64),
    "shrink 7->4": (1, 16, (4, 4), (7, 7), 2, 16, 64),
    "one head, 4x4": (2, 1, (4, 4), (4, 4), 1, 32, 64),
    "odd widths kd=5 d=7, shrink 5->3": (2, 3, (3, 3), (5, 5), 2, 5, 7),
    "odd grid 9x9": (1, 3, (9, 9), (9, 9), 1, 16, 32),
    "one token": (1, 2, (1, 1), (1, 1), 1, 8, 8),
}


@pytest.mark.parametrize("activation", [True, False])
@pytest.mark.parametrize("case", list(ATTENTION_SHAPES))
def test_attention(rng, case, activation):
    b, h, q_grid, k_grid, stride, kd, d = ATTENTION_SHAPES[case]
    n_q, n_k = q_grid[0] * q_grid[1], k_grid[0] * k_grid[1]
    packed = normal(rng, b, n_k, h, 2 * kd + d).transpose(0, 2, 1, 3)  # strided views, as model.py passes them
    q, k, v = packed[:, :, :n_q, :kd] * 2, packed[..., kd:2 * kd] * 2, packed[..., 2 * kd:]
    table = (rng.standard_normal((h, k_grid[0] * k_grid[1])) * 1.5).astype(np.float32)
    bias = np.ascontiguousarray(gather_bias(table, q_grid, k_grid, stride))
    scale = kd ** -0.5
    expected = ref.attention(q, k, v, bias, scale, activation=activation)
    got = fast.attention(q, k, v, fast.bias_layout(bias), scale, activation=activation)
    err = assert_close_relative(got, expected, KERNEL_REL, case)
    print(f"attention {case} act={activation}: {err:.2e}")


def test_attention_does_not_depend_on_thread_count(rng):
    packed = normal(rng, 2, 49, 6, 64).transpose(0, 2, 1, 3)
    q, k, v = packed[..., :16], packed[..., 16:32], packed[..., 32:]
    bias = fast.bias_layout(normal(rng, 6, 49, 49))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = fast.attention(q, k, v, bias, 0.25)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = fast.attention(q, k, v, bias, 0.25)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, many)


def test_exp_polynomial(rng):
    x = np.concatenate([np.linspace(-100, 0, 20001), -rng.exponential(3, 5000)]).astype(np.float32)
    got = x.copy()
    fast._exp_shifted(got, np.zeros_like(x))
    expected = np.exp(np.maximum(x.astype(np.float64), -87.0))
    rel = np.abs(got - expected) / expected
    print(f"exp: max relative error {rel.max():.2e} over [-100, 0] (clamped at -87)")
    np.testing.assert_allclose(got, expected, rtol=5e-7, atol=0)


def test_hardswish(rng):
    x = (normal(rng, 3, 50, 7) * 4).astype(np.float32)
    np.testing.assert_allclose(fast.hardswish(x), ref.hardswish(x), rtol=1e-6, atol=1e-7)


def test_classifier_is_the_merged_head(layers_128s, rng):
    x = normal(rng, 3, 384)
    merged = fold.merge_heads(fold.fold_bn_before(layers_128s["head"]), fold.fold_bn_before(layers_128s["head_dist"]))
    got = fast.classifier(x, fast._dense_layer(merged))
    err = assert_close_relative(got, ref.classifier(x, {"head": layers_128s["head"], "head_dist": layers_128s["head_dist"]}), KERNEL_REL,
                                "classifier")
    print(f"classifier: {err:.2e}")


# ---------------------------------------------------------------- whole models


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_whole_model_matches_reference(variant):
    cfg = VARIANTS[variant]
    params = random_params(cfg, seed=11)
    x = np.random.default_rng(12).standard_normal((2, 3, 224, 224)).astype(np.float32)
    expected = levit_np.LevitModel(cfg, params, backend="numpy")(x)
    model = levit_np.LevitModel(cfg, params, backend="numba")
    got = model(x)
    err = assert_close_relative(got, expected, MODEL_REL, variant)
    print(f"{variant}: max|diff| / max|ref| = {err:.2e} (max|ref| = {np.abs(expected).max():.1f})")
    assert model(x[:1]).shape == (1, cfg.num_classes)


def test_trace_names_and_other_input_size():
    """The hook sees the same names on both backends; a 160x192 input (10x12 tokens) still matches."""
    cfg = VARIANTS["levit_128s"]
    params = random_params(cfg, seed=13)
    x = np.random.default_rng(14).standard_normal((1, 3, 160, 192)).astype(np.float32)
    expected = levit_np.LevitModel(cfg, params, backend="numpy").trace(x)
    got = levit_np.LevitModel(cfg, params, backend="numba").trace(x)
    assert list(got) == list(expected)
    for name in ("stem", "stages.1.downsample.attn", "stages.2.blocks.0.attn"):
        assert_close_relative(got[name], expected[name], MODEL_REL, name)
    err = assert_close_relative(got["logits"], expected["logits"], MODEL_REL, "logits at 160x192")
    print(f"160x192 input: {err:.2e}")


def test_prepare_folds_scale_and_merges_heads():
    cfg = VARIANTS["levit_128s"]
    layers = fast.prepare(cfg, random_params(cfg, seed=1))
    scales = [layers[f"{b.name}.scale"] for b in blocks(cfg) if b.kind.has_attention]
    assert scales == [1.0] * len(scales)
    assert "head" not in layers and "head_dist" not in layers  # one merged linear holds both
    assert layers["classifier"]["n"] == 1000 and layers["classifier"]["panels"].shape == (32, 384, 32)


@pytest.mark.parametrize("change", [{"depths": (1, 1, 1)}, {"norm": "ln"}, {"stem_kind": "patch16"}])
def test_other_architectures_are_refused(change):
    cfg = dataclasses.replace(VARIANTS["levit_128s"], **change)
    with pytest.raises(fast.UnsupportedConfig, match="backend='numpy'"):
        fast.prepare(cfg, {})
    fast.check_supported(dataclasses.replace(VARIANTS["levit_256"], name="mine", num_classes=43))


@pytest.mark.parametrize(("features", "name", "floats"), [("+avx2,+fma,+avx512f,+avx512bw", None, 16),
                                                         ("+avx2,+fma,-avx512f", None, 8), ("", "generic", 8)])
def test_vector_width_follows_numbas_target_cpu(monkeypatch, features, name, floats):
    """The sgemm's register block follows the CPU Numba compiles for (NUMBA_CPU_FEATURES / NUMBA_CPU_NAME when
    set, as for portable caches): 16 floats a register with AVX-512, else 8."""
    from levit_np.kernels.numba_common import vector_floats

    monkeypatch.setattr(numba.config, "CPU_FEATURES", features or None)
    monkeypatch.setattr(numba.config, "CPU_NAME", name)
    assert vector_floats() == floats
