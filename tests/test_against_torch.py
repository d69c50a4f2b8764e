"""The NumPy reference against a live PyTorch LeViT (transformers, and timm when installed), all five variants.

Weights are random, BN statistics and attention biases included. Each reference model's own state dict is
saved in its own layout and in the official layout, read back by levit-np (no torch involved in reading),
and must give the reference logits within max|diff| <= 1e-5 * max|ref|.
"""

from __future__ import annotations

import numpy as np
import pytest

import levit_np

from conftest import assert_close_relative

tr = pytest.importorskip("torch_reference")
if not tr.have_transformers():
    pytest.skip("torch and transformers are not installed (pip install -e '.[test]')", allow_module_level=True)

REL = 1e-5
X = np.random.default_rng(7).normal(size=(2, 3, 224, 224)).astype(np.float32)


@pytest.fixture(scope="module", params=tr.VARIANTS)
def hf_reference(request):
    variant = request.param
    model = tr.build_hf_model(variant, seed=11)
    return variant, tr.state_dict_numpy(model), tr.reference_logits(model, X), tr.reference_trace(model, X)


@pytest.mark.parametrize("fmt,name", [("hf-bin", "pytorch_model.bin"), ("safetensors", "model.safetensors"),
                                      ("pth-official", "official.pth")])
def test_hf_reference_in_each_layout(hf_reference, tmp_path, fmt, name):
    variant, state, logits, _ = hf_reference
    if fmt == "pth-official":
        state = tr.to_official_layout(state, variant)
    path = tr.save_checkpoint(state, tmp_path / name, fmt)
    model = levit_np.load(path)
    assert model.config.name == variant
    err = assert_close_relative(model(X), logits, REL, f"{variant} {fmt}")
    print(f"{variant} from {fmt}: max|diff|/max|ref| = {err:.2e}")


def test_every_block_against_hf(hf_reference):
    variant, state, _, trace = hf_reference
    from levit_np.weights.convert import map_state_dict

    conversion = map_state_dict(state)
    ours = levit_np.LevitModel(conversion.config, conversion.params).trace(X)
    names = [n for n in ours if n not in ("pool", "logits")]
    official_names = ["stem"] + [f"blocks.{i}" for i in range(tr.num_official_blocks(variant))]
    assert len(names) == len(official_names)
    worst = max(assert_close_relative(ours[a], trace[b], REL, f"{variant} {a}") for a, b in zip(names, official_names))
    print(f"{variant}: worst block {worst:.2e}")


@pytest.mark.skipif(not tr.have_timm(), reason="timm is not installed (see README: pip install --no-deps timm ...)")
@pytest.mark.parametrize("variant", ["levit_128s", "levit_256"])
@pytest.mark.parametrize("fmt,name", [("pth", "timm.pth"), ("safetensors", "timm.safetensors"),
                                      ("pth-official", "official.pth")])
def test_timm_reference_in_each_layout(tmp_path, variant, fmt, name):
    model = tr.build_timm_model(variant, seed=5)
    logits = tr.reference_logits(model, X[:1])
    state = tr.state_dict_numpy(model)
    if fmt == "pth-official":
        state = tr.to_official_layout(state, variant)
    ours = levit_np.load(tr.save_checkpoint(state, tmp_path / name, fmt))
    err = assert_close_relative(ours(X[:1]), logits, REL, f"timm {variant} {fmt}")
    print(f"timm {variant} from {fmt}: {err:.2e}")
