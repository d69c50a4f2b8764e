"""ImageNet labels, softmax and top-k."""

from __future__ import annotations

import numpy as np
import pytest

from levit_np.images.labels import imagenet_classes, label, softmax, top_k, wnid


def test_classes_loaded_from_package_data():
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes[0] == ("n01440764", "tench")
    assert classes[999] == ("n15075141", "toilet tissue")
    assert len({w for w, _ in classes}) == 1000  # wnids are unique (names are not: two "crane", two "maillot")
    assert all("_" not in name for _, name in classes)


def test_classes_returns_a_copy():
    imagenet_classes().clear()
    assert len(imagenet_classes()) == 1000


def test_label_and_wnid():
    assert label(0) == "tench"
    assert label(2) == "great white shark"  # underscores -> spaces
    assert wnid(0) == "n01440764"
    assert label(np.int64(1)) == "goldfish"


@pytest.mark.parametrize("bad", [-1, 1000, 2.5])
def test_bad_index(bad):
    with pytest.raises(IndexError):
        label(bad)
    with pytest.raises(IndexError):
        wnid(bad)


def test_top_k_order_and_ties():
    p = np.array([0.1, 0.3, 0.3, 0.2, 0.1], np.float32)
    assert [i for i, _ in top_k(p, 3)[0]] == [1, 2, 3]  # equal values: lower index first
    assert [i for i, _ in top_k(p, 5)[0]] == [1, 2, 3, 0, 4]
    best = top_k(p, 1)
    assert len(best) == 1 and best[0][0][0] == 1
    assert best[0][0][1] == pytest.approx(0.3)
    assert len(top_k(p, 10)[0]) == 5  # k capped at the number of classes


def test_top_k_all_equal_keeps_index_order():
    assert [i for i, _ in top_k(np.full(1000, 1e-3), 5)[0]] == [0, 1, 2, 3, 4]


def test_top_k_batch():
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(3, 1000)))
    result = top_k(probs, 5)
    assert len(result) == 3
    for row, res in zip(probs, result):
        indices = [i for i, _ in res]
        assert indices == list(np.argsort(-row)[:5])
        values = [v for _, v in res]
        assert values == sorted(values, reverse=True)
        np.testing.assert_allclose(values, row[indices], rtol=0, atol=0)


def test_top_k_rejects_bad_input():
    with pytest.raises(ValueError):
        top_k(np.zeros((2, 3, 4)), 1)
    with pytest.raises(ValueError):
        top_k(np.zeros(10), 0)


def test_softmax():
    logits = np.array([[1000.0, 1001.0, 999.0], [0.0, 0.0, 0.0]], np.float32)
    p = softmax(logits)
    assert p.dtype == np.float32 and np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-6)
    e = np.exp(np.array([1.0, 2.0, 0.0]))
    np.testing.assert_allclose(p[0], e / e.sum(), rtol=1e-6, atol=0)
    np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-6, atol=0)
    np.testing.assert_allclose(softmax(logits.T, axis=0), p.T, rtol=0, atol=0)
