"""Any input size: the resampled attention-bias tables, the forward pass at other sizes, H x W preprocessing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import levit_np
from levit_np.model.attention_bias import bias_index, gather_bias, resample_table
from levit_np.model.config import blocks
from levit_np.images.preprocessing import cover_short_side, preprocess_hw
from levit_np.model.grid import token_grids
from levit_np.images.preprocessing import preprocess

OTHER_SIZES = [(160, 224), (288, 288), (224, 320)]


@pytest.fixture(scope="module")
def model():
    return levit_np.create("levit_128s", seed=3)


@pytest.fixture(scope="module")
def table():
    return np.random.default_rng(0).normal(0, 1.5, (4, 196)).astype(np.float32)


def keys_cubic_resample_one_head(grid: np.ndarray, rows: int, cols: int, a: float = -0.75) -> np.ndarray:
    """An independent, loop-by-loop statement of the documented method, for one (R, R) head.

    Output (i, j) samples the offset grid at y = i (R-1)/(rows-1), x = j (R-1)/(cols-1) (0 for a single
    row/column) with the 4x4 taps of Keys' cubic kernel, tap indices clamped to 0..R-1.
    """
    side = grid.shape[0]

    def kernel(s):
        s = abs(s)
        if s <= 1:
            return (a + 2) * s ** 3 - (a + 3) * s ** 2 + 1
        if s < 2:
            return a * s ** 3 - 5 * a * s ** 2 + 8 * a * s - 4 * a
        return 0.0

    out = np.zeros((rows, cols))
    for i in range(rows):
        y = 0.0 if rows == 1 else i * (side - 1) / (rows - 1)
        for j in range(cols):
            x = 0.0 if cols == 1 else j * (side - 1) / (cols - 1)
            total = 0.0
            for ty in range(math.floor(y) - 1, math.floor(y) + 3):
                for tx in range(math.floor(x) - 1, math.floor(x) + 3):
                    value = grid[min(max(ty, 0), side - 1), min(max(tx, 0), side - 1)]
                    total += kernel(y - ty) * kernel(x - tx) * value
            out[i, j] = total
    return out


def test_training_size_is_exactly_the_original(table, model):
    """At 224 (key grid 14x14) nothing is resampled: the gathered bias is table[:, attention_bias_idxs], bit for bit."""
    assert resample_table(table, 14, 14) is table
    np.testing.assert_array_equal(gather_bias(table, (14, 14), (14, 14)), table[:, bias_index((14, 14), (14, 14))])
    np.testing.assert_array_equal(gather_bias(table, (7, 7), (14, 14), 2), table[:, bias_index((7, 7), (14, 14), 2)])
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
    model(x)
    for block in blocks(model.config):
        if not block.kind.has_attention:
            continue
        for (q_grid, k_grid), cached in model.layers[f"{block.name}.bias"].cache.items():
            original = model.params[f"{block.name}.attention_biases"][:, bias_index(q_grid, k_grid, block.bias_stride)]
            np.testing.assert_array_equal(cached, original, err_msg=block.name)


@pytest.mark.parametrize("rows, cols", [(18, 18), (10, 14), (20, 9), (4, 7), (1, 1), (2, 3)])
def test_resampled_table_equals_independent_computation(table, rows, cols):
    got = resample_table(table, rows, cols).reshape(4, rows, cols)
    want = keys_cubic_resample_one_head(table[2].astype(np.float64).reshape(14, 14), rows, cols)
    err = np.abs(got[2] - want).max()
    print(f"{rows}x{cols}: max|diff| = {err:.2e}")
    np.testing.assert_allclose(got[2], want, rtol=0, atol=1e-5, err_msg=f"{rows}x{cols}: max|diff| {err:.2e}")


def test_resampling_keeps_the_end_offsets_and_matches_torch_bicubic(table):
    """Align-corners positions keep offset 0 and the largest offset; the method is PyTorch's bicubic, align_corners."""
    grid = table.reshape(4, 14, 14)
    out = resample_table(table, 20, 9).reshape(4, 20, 9)
    np.testing.assert_array_equal(out[:, 0, 0], grid[:, 0, 0])
    np.testing.assert_array_equal(out[:, -1, -1], grid[:, -1, -1])
    torch = pytest.importorskip("torch")
    want = torch.nn.functional.interpolate(torch.from_numpy(grid[None]).double(), size=(20, 9), mode="bicubic",
                                           align_corners=True)[0].numpy()
    err = np.abs(out - want).max()
    print(f"vs torch bicubic align_corners=True: max|diff| = {err:.2e}")
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-5, err_msg=f"max|diff| {err:.2e}")


@pytest.mark.parametrize("height, width", OTHER_SIZES)
def test_forward_at_other_sizes(model, height, width):
    x = np.random.default_rng(2).standard_normal((2, 3, height, width), dtype=np.float32)
    trace = model.trace(x)
    grids = token_grids(model.config, height, width)
    assert trace["stem"].shape == (2, 128, *grids[0])
    for block in blocks(model.config):
        rows, cols = grids[block.stage]
        assert trace[block.name].shape == (2, rows * cols, block.dim_out), block.name
    assert trace["logits"].shape == (2, 1000) and np.isfinite(trace["logits"]).all()
    assert np.abs(trace["logits"] - model(x)).max() == 0


def test_grids_are_ceil_halved():
    cfg = levit_np.get_config("levit_128s")
    assert token_grids(cfg, 224, 224) == [(14, 14), (7, 7), (4, 4)]
    assert token_grids(cfg, 160, 224) == [(10, 14), (5, 7), (3, 4)]
    assert token_grids(cfg, 224, 320) == [(14, 20), (7, 10), (4, 5)]
    assert token_grids(cfg, 16, 48) == [(1, 3), (1, 2), (1, 1)]


@pytest.mark.parametrize("shape", [(1, 3, 100, 224), (1, 3, 224, 8), (1, 3, 0, 224)])
def test_sizes_that_are_not_multiples_of_16_are_refused(model, shape):
    with pytest.raises(ValueError, match="multiples of 16"):
        model(np.zeros(shape, np.float32))


def test_square_sizes_match_pytorch_with_resampled_tables(model):
    """HF's official architecture built at 288 (18/9/5 grids), given our resampled tables, gives our outputs."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from levit_np.analysis.torch_reference import hf_model, hf_trace
    from levit_np.analysis.tracing import max_differences
    from levit_np.perf.model_profile import timed_trace

    x = np.random.default_rng(4).standard_normal((1, 3, 288, 288), dtype=np.float32)
    reference = hf_trace(hf_model(model.config, model.params, (288, 288)), model.config, x)
    diffs = max_differences(timed_trace(model, x, warmup=False), reference)
    worst = max(d[1] for d in diffs.values())
    print(f"288x288 vs HF: worst relative max|diff| = {worst:.2e}")
    assert len(diffs) == len(model.block_names()) and None not in diffs.values()
    assert worst < 1e-5, diffs


@pytest.fixture(scope="module")
def photo():
    """A 300x200 RGB image with structure in both directions (so a wrong crop changes the pixels)."""
    ys, xs = np.mgrid[0:200, 0:300]
    rgb = np.stack([(xs * 255 // 299), (ys * 255 // 199), ((xs + ys) % 256)], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


def test_preprocess_at_224_is_the_official_transform(photo):
    np.testing.assert_array_equal(preprocess_hw(photo, 224, 224), preprocess(photo))
    np.testing.assert_array_equal(preprocess_hw(photo, 288, 288), preprocess(photo, size=288))


@pytest.mark.parametrize("height, width", [(160, 224), (224, 320), (320, 160)])
def test_preprocess_non_square(photo, height, width):
    """Resize (bicubic, aspect kept) to the smallest size covering floor(side / 0.875) both ways, centre crop."""
    x = preprocess_hw(photo, height, width)
    assert x.shape == (3, height, width) and x.dtype == np.float32
    need_h, need_w = math.floor(height / 0.875 + 1e-6), math.floor(width / 0.875 + 1e-6)
    w, h = photo.size
    scale = max(need_w / w, need_h / h)
    short = cover_short_side(photo.size, need_h, need_w)
    assert abs(short - scale * min(w, h)) < 2
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    assert size[0] >= need_w and size[1] >= need_h
    resized = photo.resize(size, Image.Resampling.BICUBIC)
    left, top = round((size[0] - width) / 2), round((size[1] - height) / 2)
    crop = np.asarray(resized.crop((left, top, left + width, top + height)), np.float32) / np.float32(255)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    want = ((crop - mean) / std).transpose(2, 0, 1)
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-6)
