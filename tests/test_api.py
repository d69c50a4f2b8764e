"""The package's public API: names that must keep working however the submodules are imported."""

from __future__ import annotations

import importlib
import os
import stat
import subprocess
import sys

import numpy as np

import levit_np
from levit_np.weights.fileio import atomic_output

from conftest import SHARED


def test_preprocess_is_callable_repeatedly():
    photo = SHARED / "images" / "coral" / "cat.bmp"
    if not photo.exists():
        import pytest

        pytest.skip("shared images are absent")
    first = levit_np.preprocess(photo)
    importlib.import_module("levit_np.images.preprocessing")  # importing the module must not replace the function

    np.testing.assert_array_equal(levit_np.preprocess(photo), first)


def test_create_and_trace_names():
    model = levit_np.create("levit_128s", seed=1)
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
    trace = model.trace(x)
    assert list(trace) == model.block_names()
    np.testing.assert_array_equal(trace["logits"], model(x))
    assert trace["logits"].shape == (1, 1000) and trace["logits"].dtype == np.float32


def test_importing_config_does_not_load_numpy():
    code = "import sys, levit_np.model.config, levit_cli.main; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_entry_point_freezes_the_collector_when_a_command_ends():
    """`levit` ends with gc.freeze(), so shutdown skips a last full collection; the exit code is the command's."""
    code = ("import gc, sys\nfrom levit_cli.main import main\nsys.argv = ['levit'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print(gc.get_freeze_count() > 0, e.code)\n")
    for args, code_expected in ((["models"], 0), (["no-such-command"], 2)):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
        assert out.stdout.split()[-2:] == ["True", str(code_expected)], (args, out.stdout, out.stderr)


def test_atomic_output_gives_normal_permissions(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
CAT, COFFEE = os.path.join(EXAMPLES, "cat.jpg"), os.path.join(EXAMPLES, "coffee.jpg")


def random_weights_file(path, variant="levit_128s", seed=5, **changes):
    import dataclasses

    from levit_np.model.params import random_params
    from levit_np.weights.hdf5_file import write_weights

    cfg = dataclasses.replace(levit_np.get_config(variant), **changes)
    write_weights(path, cfg, random_params(cfg, seed))
    return path


def test_load_by_name_uses_the_cache_and_every_spelling(tmp_path, monkeypatch):
    monkeypatch.setenv("LEVIT_HOME", str(tmp_path))
    monkeypatch.setenv("LEVIT_WEIGHTS_URL", "http://127.0.0.1:9")  # a download would fail loudly
    random_weights_file(tmp_path / "levit_128s.h5")
    monkeypatch.chdir(tmp_path / "..")  # no file called "128s" here
    for name in ("levit_128s", "128s", "LeViT-128S"):
        model = levit_np.load(name)
        assert model.config.name == "levit_128s" and model.weights_file == str(tmp_path / "levit_128s.h5")


def test_load_by_name_offline_names_the_url_and_the_convert_command(tmp_path, monkeypatch):
    import pytest

    from levit_np.weights.hub import WeightsUnavailable

    monkeypatch.setenv("LEVIT_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LEVIT_WEIGHTS_URL", "http://127.0.0.1:9")
    with pytest.raises(WeightsUnavailable) as info:
        levit_np.load("levit_192")
    message = str(info.value)
    assert "http://127.0.0.1:9/LeViT-192-92712e41.pth" in message and "levit convert LeViT-192-92712e41.pth" in message
    with pytest.raises(levit_np.WeightsFileError, match="no such file, and not a model name"):
        levit_np.load(tmp_path / "nothing.h5")


def test_models_lists_the_names_load_and_create_accept():
    assert levit_np.models() == ["levit_128s", "levit_128", "levit_192", "levit_256", "levit_384"]
    assert all(levit_np.get_config(name).name == name for name in levit_np.models())


def test_classify_takes_paths_pil_images_and_arrays_one_or_many(tmp_path):
    from PIL import Image

    from levit_np.images.labels import label, softmax, wnid

    model = levit_np.load(random_weights_file(tmp_path / "w.h5"))
    x = levit_np.preprocess([CAT, COFFEE])
    assert x.shape == (2, 3, 224, 224) and x.dtype == np.float32
    np.testing.assert_array_equal(x[1], levit_np.preprocess(COFFEE))
    expected = softmax(model(x))  # (2, 1000)
    one = model.classify(CAT, k=3)
    assert [set(p) for p in one] == [{"label", "wnid", "index", "probability"}] * 3
    order = np.argsort(-expected[0], kind="stable")[:3]
    assert [p["index"] for p in one] == order.tolist()
    assert [(p["label"], p["wnid"]) for p in one] == [(label(i), wnid(i)) for i in order]
    np.testing.assert_allclose([p["probability"] for p in one], expected[0, order], rtol=0, atol=1e-5)  # batch 1 vs 2
    pixels = np.asarray(Image.open(CAT).convert("RGB"))  # (H, W, 3) uint8
    for same in (Image.open(CAT), pixels, x[0]):
        assert model.classify(same, k=3) == one
    many = model.classify([CAT, Image.open(COFFEE)], k=2)
    assert len(many) == 2 and [p["index"] for p in many[0]] == [p["index"] for p in one[:2]]
    np.testing.assert_allclose([p["probability"] for p in many[0]], [p["probability"] for p in one[:2]],
                               rtol=0, atol=1e-5)
    assert model.classify(x, k=2) == many
    assert [p["index"] for p in many[1]] == np.argsort(-expected[1], kind="stable")[:2].tolist()


def test_classify_refuses_arrays_it_cannot_read(tmp_path):
    import pytest

    model = levit_np.create("levit_128s")
    with pytest.raises(ValueError, match="cannot classify an array of shape \\(4, 4\\) and dtype float64"):
        model.classify(np.zeros((4, 4)))


def test_repr_says_variant_backend_params_and_source(tmp_path):
    path = random_weights_file(tmp_path / "w.h5", num_classes=10)
    assert repr(levit_np.load(path)) == (f"LevitModel(levit_128s, backend='numpy', params=7.0M, classes=10, "
                                         f"source='{path}')")
    assert repr(levit_np.create("256", seed=3)) == ("LevitModel(levit_256, backend='numpy', params=18.9M, "
                                                    "classes=1000, source='random weights (seed 3)')")


def test_load_with_class_names_labels_a_fine_tuned_head(tmp_path):
    path = random_weights_file(tmp_path / "w.h5", num_classes=3)
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\nbird\n")
    model = levit_np.load(path, class_names=names)
    result = model.classify(CAT, k=3)
    assert sorted(p["label"] for p in result) == ["bird", "cat", "dog"]
    assert all(p["label"] == ["cat", "dog", "bird"][p["index"]] for p in result)


def test_the_namespace_exports_only_its_api():
    import types

    public = {name for name in vars(levit_np) if not name.startswith("_")
              and not isinstance(getattr(levit_np, name), types.ModuleType)}
    assert public == set(levit_np.__all__) - {"LevitModel", "__version__"}, public ^ set(levit_np.__all__)
    assert "os" not in vars(levit_np) and "annotations" not in vars(levit_np)
    assert levit_np.LevitModel.__name__ == "LevitModel"
