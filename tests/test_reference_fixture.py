"""The NumPy reference forward pass against the official code's own outputs (shared fixture, LeViT-128S)."""

from __future__ import annotations

import pytest

import levit_np
from levit_np.kernels import reference as ref

from conftest import assert_close_relative

REL = 1e-5  # the bound: max|diff| <= 1e-5 * max|ref|


@pytest.fixture(scope="module")
def model(official_pth):
    return levit_np.load(official_pth, backend="numpy")


@pytest.fixture(scope="module")
def trace(model, official_expected):
    return model.trace(official_expected["x_random"])


def test_variant_inferred(model):
    assert model.config.name == "levit_128s"


def test_stem_matches_official(trace, official_expected):
    err = assert_close_relative(trace["stem"], official_expected["trace/stem"], REL, "stem")
    print(f"stem: max|diff|/max|ref| = {err:.2e}")


def test_every_block_matches_official(model, trace, official_expected):
    names = model.block_names()[1:-2]  # the official flat `blocks` Sequential, in order
    official = sorted((k for k in official_expected if k.startswith("trace/blocks.")),
                      key=lambda k: int(k.rsplit(".", 1)[1]))
    assert len(names) == len(official) == 22
    for i, name in enumerate(names):
        err = assert_close_relative(trace[name], official_expected[f"trace/blocks.{i}"], REL, name)
        print(f"blocks.{i} = {name}: {err:.2e}")


def test_logits_match_official(trace, official_expected):
    err = assert_close_relative(trace["logits"], official_expected["logits_random"], REL, "logits")
    print(f"logits: {err:.2e}")


def test_each_head_matches_official(model, trace, official_expected):
    pooled = trace["pool"]
    for head in ("head", "head_dist"):
        out = ref.bn_linear(pooled, model.layers["classifier"][head])
        err = assert_close_relative(out, official_expected[f"{head}_random"], REL, head)
        print(f"{head}: {err:.2e}")


def test_photos_match_official(model, official_expected):
    logits = model(official_expected["x_images"])
    err = assert_close_relative(logits, official_expected["logits_images"], REL, "photo logits")
    print(f"photos: {err:.2e}")


def test_fused_official_logits_agree_within_float_reordering(trace, official_expected):
    """The official BN-folded model differs from the unfused one only by float32 rounding."""
    assert_close_relative(trace["logits"], official_expected["logits_random_fused"], 1e-4, "fused logits")
