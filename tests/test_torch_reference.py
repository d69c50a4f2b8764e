"""Checks of the PyTorch reference helper (tests/torch_reference.py) against the official-code fixture."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    from . import torch_reference as tr
except ImportError:
    import torch_reference as tr

TESTS = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OFFICIAL = SHARED / "fixtures" / "official"
TIMM_INSTALL = "pip install --no-deps timm==1.0.31 torchvision==0.16.2"


def _max_err(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.abs(got.astype(np.float64) - ref).max()), float(np.abs(ref).max())


def _assert_close(name: str, got: np.ndarray, ref: np.ndarray, rel: float = 1e-5) -> float:
    err, scale = _max_err(got, ref)
    print(f"{name}: max|diff| = {err:.3g} (max|ref| = {scale:.3g})")
    np.testing.assert_allclose(got, ref, rtol=0, atol=rel * scale, err_msg=f"{name}: max|diff| {err:.3g}")
    return err


def _zeros_state_dict(variant: str) -> dict[str, np.ndarray]:
    """A timm/HF-sized state dict without index buffers, official names, NumPy zeros."""
    return {e.key: np.zeros(e.shape, np.int64 if e.role == "bn_count" else np.float32)
            for e in tr.official_layout(variant) if e.role != "bias_idx"}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def hf(torch):
    if not tr.have_transformers():
        pytest.skip("transformers not importable (install with: pip install transformers)")


@pytest.fixture(scope="module")
def timm(torch):
    if not tr.have_timm():
        pytest.skip(f"timm not importable (install with: {TIMM_INSTALL})")


@pytest.fixture(scope="module")
def official(torch):
    if not (OFFICIAL / "LeViT_128S_random.pth").exists():
        pytest.skip(f"official fixture not found under {OFFICIAL}")
    sd = torch.load(OFFICIAL / "LeViT_128S_random.pth", weights_only=True)["model"]
    with np.load(OFFICIAL / "LeViT_128S_expected.npz") as z:
        expected = {k: z[k] for k in z.files}
    return sd, expected


@pytest.fixture(scope="module")
def hf_128s(hf):
    return tr.build_hf_model("levit_128s", seed=0)


# ---------------------------------------------------------------- without torch


def test_importable_without_torch():
    code = "\n".join([
        "import sys; sys.modules['torch'] = None",
        "import torch_reference as tr",
        "assert not (tr.have_torch() or tr.have_transformers() or tr.have_timm())",
        "try:\n    tr.build_hf_model('levit_128s', 0)\nexcept tr.ReferenceUnavailable:\n    pass",
        "else:\n    raise SystemExit('build_hf_model did not raise')",
        "import numpy as np",
        "sd = {e.key: np.zeros(e.shape, np.float32) for e in tr.official_layout('levit_128s') if e.role != 'bias_idx'}",
        "assert len(tr.to_official_layout(sd, 'levit_128s')) == 336",
    ])
    run = subprocess.run([sys.executable, "-c", code], cwd=TESTS, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_layout_counts_and_index_closed_form():
    counts = {v: len(tr.official_layout(v)) for v in tr.VARIANTS}
    assert counts == {"levit_128s": 336, "levit_128": 414, "levit_192": 414, "levit_256": 414, "levit_384": 414}
    assert [tr.num_official_blocks(v) for v in tr.VARIANTS] == [22, 28, 28, 28, 28]
    idx = tr.bias_index(4, 7, 2)  # shrink 7 -> 4: query (1,1) sits at key (2,2)
    assert idx.shape == (16, 49) and idx[5, 2 * 7 + 2] == 0 and idx[5, 0] == 2 * 7 + 2


def test_layout_rejects_positional_mismatch():
    sd = _zeros_state_dict("levit_128s")
    keys = list(sd)
    i = keys.index("patch_embed.0.bn.weight")  # swap BN weight and bias: same shapes, wrong order
    keys[i], keys[i + 1] = keys[i + 1], keys[i]
    with pytest.raises(ValueError, match="positional mismatch"):
        tr.to_official_layout({k: sd[k] for k in keys}, "levit_128s")
    sd["head.l.weight"] = np.zeros((1000, 383), np.float32)
    with pytest.raises(ValueError, match="head.l.weight"):
        tr.to_official_layout(sd, "levit_128s")
    with pytest.raises(ValueError, match="expected 325"):
        tr.to_official_layout(dict(list(sd.items())[:-1]), "levit_128s")


# ---------------------------------------------------------------- layouts against the real models


@pytest.mark.parametrize("variant", tr.VARIANTS)
def test_hf_and_timm_positional_layout(variant, hf, torch):
    """HF (and timm, if installed) state dicts zip onto the official layout key by key, all five variants."""
    import transformers

    with torch.device("meta"):  # shapes only, no allocation
        models = [transformers.LevitForImageClassificationWithTeacher(tr._hf_config(variant))]
        if tr.have_timm():
            import timm

            models.append(timm.create_model(variant, pretrained=False))
    for model in models:
        official = tr.to_official_layout(model.state_dict(), variant)
        assert [(k, tuple(v.shape)) for k, v in official.items()] == \
            [(e.key, e.shape) for e in tr.official_layout(variant)]


def test_official_layout_equals_fixture(official, hf_128s, torch):
    sd, _ = official
    ours = tr.to_official_layout(hf_128s.state_dict(), "levit_128s")
    assert len(sd) == 336
    assert list(ours) == list(sd)
    assert [(tuple(v.shape), v.dtype) for v in ours.values()] == [(tuple(v.shape), v.dtype) for v in sd.values()]
    for k, v in sd.items():
        if k.endswith("attention_bias_idxs"):
            assert torch.equal(ours[k], v), k
    # HF keeps its index buffers (non-persistent) equal to the closed form too
    idx_entries = [e for e in tr.official_layout("levit_128s") if e.role == "bias_idx"]
    for m, e in zip(tr.attention_modules(hf_128s), idx_entries, strict=True):
        np.testing.assert_array_equal(m.attention_bias_idxs.numpy(), tr.bias_index(*e.grid))


def test_hf_reproduces_official_fixture(official, hf, record_property):
    sd, expected = official
    model = tr.load_official_into_hf(sd, "levit_128s")
    trace = tr.reference_trace(model, expected["x_random"])
    assert list(trace) == [k.removeprefix("trace/") for k in expected if k.startswith("trace/")]
    errs = {k: _assert_close(k, v, expected[f"trace/{k}"]) for k, v in trace.items()}
    errs["logits_random"] = _assert_close("logits_random", tr.reference_logits(model, expected["x_random"]),
                                          expected["logits_random"])
    errs["logits_images"] = _assert_close("logits_images", tr.reference_logits(model, expected["x_images"]),
                                          expected["logits_images"])
    record_property("max_err", max(errs.values()))


# ---------------------------------------------------------------- randomisation and the bias cache


def test_randomisation_deterministic_and_nondegenerate(hf_128s, torch):
    a = tr.state_dict_numpy(hf_128s)
    b = tr.state_dict_numpy(tr.build_hf_model("levit_128s", seed=0))
    c = tr.state_dict_numpy(tr.build_hf_model("levit_128s", seed=1))
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    floats = [k for k in a if a[k].dtype == np.float32]
    assert all(not np.array_equal(a[k], c[k]) for k in floats)

    official = tr.to_official_layout(a, "levit_128s")
    pick = {role: np.concatenate([official[e.key].ravel() for e in tr.official_layout("levit_128s") if e.role == role])
            for role in ("bn_w", "bn_b", "bn_mean", "bn_var", "bias_table", "linear_b")}
    assert 0.5 <= pick["bn_w"].min() and pick["bn_w"].max() <= 1.5 and pick["bn_w"].std() > 0.25
    assert 0.5 <= pick["bn_var"].min() and pick["bn_var"].max() <= 2.0
    assert 0.08 < pick["bn_b"].std() < 0.12 and 0.16 < pick["bn_mean"].std() < 0.24
    assert 1.3 < pick["bias_table"].std() < 1.7 and 0.08 < pick["linear_b"].std() < 0.12
    w = official["blocks.5.m.0.c.weight"]  # fan_in 256
    assert abs(w.std() * np.sqrt(256) - 1) < 0.02


def test_bias_cache_matches_randomised_biases(hf_128s, torch):
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    before = tr.reference_logits(hf_128s, x)
    n_cached, err = tr.bias_cache_error(hf_128s)
    assert n_cached == len(tr.attention_modules(hf_128s)) == 11 and err == 0.0
    assert all(cache.std() > 1.0 for m in tr.attention_modules(hf_128s) for cache in m.attention_bias_cache.values())

    # the check can fail: change a bias after eval() and the cache goes stale until refresh_bias_cache
    first = tr.attention_modules(hf_128s)[0]
    saved = first.attention_biases.detach().clone()
    with torch.no_grad():
        first.attention_biases.add_(1.0)
        try:
            assert tr.bias_cache_error(hf_128s)[1] == pytest.approx(1.0)
            tr.refresh_bias_cache(hf_128s)
            assert tr.bias_cache_error(hf_128s)[0] == 0
            tr.reference_logits(hf_128s, x)
            assert tr.bias_cache_error(hf_128s) == (11, 0.0)
        finally:
            first.attention_biases.copy_(saved)
            tr.refresh_bias_cache(hf_128s)
    np.testing.assert_array_equal(tr.reference_logits(hf_128s, x), before)


# ---------------------------------------------------------------- timm against HF, checkpoints


@pytest.mark.parametrize("variant", ["levit_128s", "levit_256"])
def test_timm_matches_hf(variant, hf, timm, record_property):
    hf_model = tr.build_hf_model(variant, seed=7)
    timm_model = tr.load_positional(tr.build_timm_model(variant, seed=8), hf_model.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 3, 224, 224), dtype=np.float32)
    ref, got = tr.reference_trace(hf_model, x), tr.reference_trace(timm_model, x)
    assert list(got) == list(ref) == ["stem"] + [f"blocks.{i}" for i in range(tr.num_official_blocks(variant))]
    errs = [_assert_close(f"{variant} {k}", got[k], ref[k]) for k in ref]
    errs.append(_assert_close(f"{variant} logits", tr.reference_logits(timm_model, x), tr.reference_logits(hf_model, x)))
    record_property("max_err", max(errs))


def test_timm_and_hf_draw_the_same_weights(hf_128s, timm):
    a = tr.state_dict_numpy(hf_128s)
    b = tr.state_dict_numpy(tr.build_timm_model("levit_128s", seed=0))
    assert len(a) == len(b) == 325
    assert all(np.array_equal(x, y) for x, y in zip(a.values(), b.values()))


@pytest.mark.parametrize("fmt", tr.CHECKPOINT_FORMATS)
def test_save_checkpoint_roundtrip(fmt, hf_128s, torch, tmp_path):
    sd = tr.to_official_layout(tr.state_dict_numpy(hf_128s), "levit_128s")
    target = tmp_path if fmt == "hf-bin" else tmp_path / f"ckpt.{fmt}"
    path = tr.save_checkpoint(sd, target, fmt)
    if fmt == "safetensors":
        from safetensors.torch import load_file

        loaded = load_file(str(path))
    else:
        loaded = torch.load(path, weights_only=True)
        assert path.name == "pytorch_model.bin" or fmt != "hf-bin"
        loaded = loaded["model"] if fmt == "pth-official" else loaded
    assert list(loaded) == list(sd) or fmt == "safetensors"  # safetensors stores keys sorted
    assert sorted(loaded) == sorted(sd)
    for k, v in sd.items():
        assert loaded[k].dtype == torch.from_numpy(v).dtype and np.array_equal(loaded[k].numpy(), v), k
