"""Conversion: layouts, variant inference, strictness, the HDF5 round trip, and the CLI's bad-input handling."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file

import levit_np
from levit_np.model.config import VARIANTS
from levit_np.weights.convert import map_state_dict
from levit_np.errors import ConversionError, WeightsFileError
from levit_np.weights.layouts import LAYOUTS
from levit_np.model.params import param_shapes, random_params
from levit_np.weights.hdf5_file import read_weights, write_weights
from levit_cli.main import cli

CFG = VARIANTS["levit_128s"]


@pytest.fixture(scope="module")
def params():
    return random_params(CFG, seed=3)


def in_layout(params: dict, layout: str, cfg=CFG) -> dict:
    """Canonical tensors renamed into a source layout (the inverse of conversion)."""
    return {source: params[name] for name, source in LAYOUTS[layout].key_map(cfg).items()}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("layout", ["timm", "hf"])
def test_every_variant_is_inferred_from_shapes(variant, layout):
    cfg = VARIANTS[variant]
    shapes = {source: np.zeros(param_shapes(cfg)[name], np.float32)
              for name, source in LAYOUTS[layout].key_map(cfg).items()}
    result = map_state_dict(shapes)
    assert result.config.name == variant
    assert result.layout.name == layout


def test_key_maps_are_one_to_one():
    for cfg in VARIANTS.values():
        for layout in LAYOUTS.values():
            key_map = layout.key_map(cfg)
            assert list(key_map) == list(param_shapes(cfg))
            assert len(set(key_map.values())) == len(key_map), layout.name


def test_conversion_keeps_every_tensor(params):
    result = map_state_dict(in_layout(params, "hf"))
    for name, value in params.items():
        np.testing.assert_array_equal(result.params[name], value, err_msg=name)


def test_hdf5_round_trip(tmp_path, params):
    path = tmp_path / "m.h5"
    write_weights(path, CFG, params, source_name="x.pth", source_sha256="ab" * 32, source_layout="timm")
    info, loaded = read_weights(path)
    assert info.config == CFG and info.attrs["source_name"] == "x.pth" and info.attrs["source_layout"] == "timm"
    assert list(loaded) == list(params) or set(loaded) == set(params)
    for name, value in params.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
    np.testing.assert_array_equal(levit_np.load(path)(x), levit_np.LevitModel(CFG, params)(x))



def test_hdf5_tensors_stored_any_way_read_the_same(tmp_path, params):
    """Contiguous tensors are read from the file directly, chunked and compressed ones through HDF5: the same
    values either way."""
    import h5py

    plain, mixed = tmp_path / "plain.h5", tmp_path / "mixed.h5"
    write_weights(plain, CFG, params, source_name="x.pth", source_sha256="ab" * 32, source_layout="timm")
    with h5py.File(plain, "r") as src, h5py.File(mixed, "w") as out:
        for key, value in src.attrs.items():
            out.attrs[key] = value
        group = out.create_group("params")
        for i, name in enumerate(src["params"]):
            value = src["params"][name][()]
            chunked = i % 2 == 1 and value.size > 1
            group.create_dataset(name, data=value, **({"chunks": True, "compression": "gzip"} if chunked else {}))
    with h5py.File(mixed, "r") as f:
        offsets = [f["params"][name].id.get_offset() for name in f["params"]]
    assert None in offsets and any(offset is not None for offset in offsets)  # both kinds of storage present
    _, loaded = read_weights(mixed)
    assert set(loaded) == set(params)
    for name, value in params.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)

def test_missing_key_is_reported(params):
    state = in_layout(params, "timm")
    del state["stages.0.blocks.0.attn.qkv.linear.weight"]
    with pytest.raises(ConversionError, match="missing key stages.0.blocks.0.attn.qkv.linear.weight"):
        map_state_dict(state, "levit_128s")


def test_extra_key_is_reported(params):
    state = in_layout(params, "timm")
    state["stages.0.blocks.0.attn.mystery"] = np.zeros(3, np.float32)
    with pytest.raises(ConversionError, match="unexpected key stages.0.blocks.0.attn.mystery"):
        map_state_dict(state)


def test_wrong_shape_is_reported(params):
    state = in_layout(params, "hf")
    key = "levit.encoder.stages.1.layers.0.module.projection.linear.weight"
    state[key] = state[key][:, :-1]
    with pytest.raises(ConversionError, match=r"has shape \(256, 191\), expected \(256, 192\)"):
        map_state_dict(state)


def test_all_problems_in_one_error(params):
    state = in_layout(params, "timm")
    del state["head.linear.bias"]
    state["extra"] = np.zeros(1, np.float32)
    state["stem.conv2.bn.weight"] = np.zeros(7, np.float32)
    with pytest.raises(ConversionError) as info:
        map_state_dict(state, "levit_128s")
    message = str(info.value)
    assert "3 problem(s)" in message and "missing key head.linear.bias" in message
    assert "unexpected key extra" in message and "stem.conv2.bn.weight has shape (7,)" in message


def test_unknown_variant_is_rejected(params):
    with pytest.raises(ConversionError, match="unknown LeViT variant 'levit_999'"):
        map_state_dict(in_layout(params, "timm"), "levit_999")


def test_a_checkpoint_of_another_variant_says_first_which_it_is(params):
    with pytest.raises(ConversionError) as info:
        map_state_dict(in_layout(params, "timm"), "levit_256")
    assert str(info.value).startswith("this is a levit_128s checkpoint, not levit_256"), str(info.value)
    assert "problem" not in str(info.value)  # no list of shape errors once the variant is known


def test_a_damaged_checkpoint_of_another_variant_names_the_closest_first(params):
    state = in_layout(params, "timm")
    state["extra"] = np.zeros(1, np.float32)
    with pytest.raises(ConversionError) as info:
        map_state_dict(state, "LeViT-256")
    assert str(info.value) == ("this looks like a levit_128s checkpoint, not levit_256; as levit_128s it has "
                               "1 problem(s): unexpected key extra")
    with pytest.raises(ConversionError, match="does not fit as levit_128s: 1 problem"):
        map_state_dict(state, "128s")


def test_the_class_count_comes_from_the_head(tmp_path):
    """A fine-tuned LeViT (10 classes) converts, round-trips through HDF5 and runs with 10 logits."""
    import dataclasses

    cfg10 = dataclasses.replace(CFG, num_classes=10)
    params10 = random_params(cfg10, seed=4)
    conversion = map_state_dict(in_layout(params10, "timm", cfg10))
    assert conversion.config == cfg10
    write_weights(tmp_path / "ten.h5", conversion.config, conversion.params)
    model = levit_np.load(tmp_path / "ten.h5")
    assert model.config.num_classes == 10 and len(model.class_names) == 10
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
    logits = model(x)
    reference = levit_np.LevitModel(cfg10, params10)(x)
    assert logits.shape == (1, 10)
    np.testing.assert_allclose(logits, reference, rtol=0, atol=1e-6)


def test_unknown_layout_is_rejected():
    with pytest.raises(ConversionError, match="not a known LeViT checkpoint layout"):
        map_state_dict({"fc.weight": np.zeros((2, 2), np.float32)})


def test_official_bias_index_buffers_are_checked(official_pth):
    from levit_np.weights.checkpoint_io import read_state_dict

    state = read_state_dict(official_pth)
    assert map_state_dict(state).config.name == "levit_128s"
    state["blocks.4.attention_bias_idxs"] = state["blocks.4.attention_bias_idxs"][:, ::-1].copy()
    with pytest.raises(ConversionError, match="blocks.4.attention_bias_idxs is not the standard"):
        map_state_dict(state)


def test_weights_file_rejects_foreign_hdf5(tmp_path):
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(WeightsFileError, match="not a levit-np weights file"):
        read_weights(path)


# --- the CLI -----------------------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_cli_convert_safetensors_and_info(tmp_path, params):
    src = tmp_path / "model.safetensors"
    save_file(in_layout(params, "timm"), str(src))
    out = tmp_path / "out.h5"
    result = run("convert", src, "-o", out)
    assert result.exit_code == 0, result.output
    info = run("info", out, "--json")
    assert info.exit_code == 0, info.output
    assert '"variant": "levit_128s"' in info.output and '"source_layout": "timm"' in info.output


def assert_one_line_failure(result, needle: str):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert needle in lines[0], lines[0]


def pickled_zip(path, payload) -> None:
    """A zip shaped like a PyTorch checkpoint whose data.pkl is `payload` pickled (never loaded by us)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        z.writestr("archive/version", "3\n")


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "foreign_global", "wrong_shape",
                                  "directory"])
def test_cli_convert_bad_input(tmp_path, params, case, official_pth, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / f"{case}.pth"
    needle = str(src.name)
    if case == "empty":
        src.write_bytes(b"")
    elif case == "text":
        src.write_text("hello, I am not a checkpoint\n")
    elif case == "truncated":
        data = official_pth.read_bytes()
        src.write_bytes(data[: len(data) // 2])
    elif case == "foreign_global":
        pickled_zip(src, {"model": Evil()})
        needle = "system"
    elif case == "wrong_shape":
        state = in_layout(params, "timm")
        state["head.linear.weight"] = state["head.linear.weight"][:, :100]  # rows would be a class count
        src = tmp_path / "wrong.safetensors"
        save_file(state, str(src))
        needle = "head.linear.weight has shape (1000, 100)"
    elif case == "directory":
        src = tmp_path / "adir"
        src.mkdir()
        needle = "adir"
    out = tmp_path / "out.h5"
    result = run("convert", src, "-o", out)
    assert_one_line_failure(result, needle)
    assert not out.exists()
    assert not (tmp_path / "pwned").exists()
    assert not list(tmp_path.glob(".out.h5*")), "a temporary file was left behind"


def test_cli_verbose_shows_traceback(tmp_path):
    src = tmp_path / "empty.pth"
    src.write_bytes(b"")
    result = run("--verbose", "convert", src, "-o", tmp_path / "o.h5")
    assert result.exit_code != 0 and result.exc_info is not None


def test_cli_failed_conversion_keeps_existing_output(tmp_path, params):
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous contents")
    src = tmp_path / "bad.safetensors"
    save_file({"fc.weight": np.zeros((2, 2), np.float32)}, str(src))
    result = run("convert", src, "-o", out)
    assert result.exit_code != 0
    assert out.read_bytes() == b"previous contents"


def test_cli_info_on_non_weights_file(tmp_path):
    path = tmp_path / "x.h5"
    path.write_text("not hdf5")
    assert_one_line_failure(run("info", path), "x.h5")


def test_cli_convert_refuses_to_overwrite_its_source(tmp_path, official_pth):
    src = tmp_path / "copy.h5"  # a checkpoint is read by content, whatever its name
    src.write_bytes(official_pth.read_bytes())
    assert_one_line_failure(run("convert", src, "-o", src), "it is the source checkpoint itself")
    assert src.read_bytes() == official_pth.read_bytes()


def test_cli_convert_into_missing_folder_fails_without_creating_it(tmp_path, official_pth):
    out = tmp_path / "nodir" / "x.h5"
    assert_one_line_failure(run("convert", official_pth, "-o", out), "the folder")
    assert not out.parent.exists()


def test_cli_usage_errors_are_one_line(tmp_path):
    result = run("convert", tmp_path / "x.pth")  # -o missing
    assert_one_line_failure(result, "Missing option '-o'")
    assert result.exit_code == 2


def test_cli_info_rejects_a_damaged_weights_file(tmp_path, params):
    import h5py

    path = tmp_path / "m.h5"
    write_weights(path, CFG, params)
    with h5py.File(path, "a") as f:
        del f["params"]["head.bias"]
    assert_one_line_failure(run("info", path), "missing head.bias")


def test_cli_convert_refuses_an_output_name_that_is_not_h5(tmp_path, params):
    src = tmp_path / "model.safetensors"
    save_file(in_layout(params, "timm"), str(src))
    result = run("convert", src, "-o", tmp_path / "weights.txt")
    assert_one_line_failure(result, "weights.txt: levit convert writes a levit-np HDF5 weights file")
    assert result.exit_code == 2 and not (tmp_path / "weights.txt").exists()
    assert run("convert", src, "-o", tmp_path / "w.HDF5").exit_code == 0


def test_cli_convert_with_the_wrong_variant_names_the_right_one(tmp_path, params):
    src = tmp_path / "model.safetensors"
    save_file(in_layout(params, "hf"), str(src))
    result = run("convert", src, "-o", tmp_path / "out.h5", "--variant", "LeViT-256")
    assert_one_line_failure(result, "Error: this is a levit_128s checkpoint, not levit_256")
    assert not (tmp_path / "out.h5").exists()


def test_cli_info_on_a_checkpoint_says_what_it_holds(tmp_path):
    import dataclasses
    import json

    cfg10 = dataclasses.replace(CFG, num_classes=10)
    src = tmp_path / "finetuned.safetensors"
    save_file(in_layout(random_params(cfg10, seed=1), "timm", cfg10), str(src))
    result = run("info", src)
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first == (f"{src} is a safetensors checkpoint, not a levit-np weights file: levit_128s weights "
                     f"(timm levit_* state dict), 10 classes."), first
    assert f"levit convert {src} -o finetuned.h5" in result.output
    summary = json.loads(run("info", src, "--json").output)
    assert {key: summary[key] for key in ("format", "layout", "variant", "num_classes", "tensors")} == {
        "format": "safetensors", "layout": "timm", "variant": "levit_128s", "num_classes": 10,
        "tensors": len(param_shapes(cfg10))}


def test_cli_info_on_a_checkpoint_that_does_not_convert_says_why(tmp_path, params):
    state = in_layout(params, "timm")
    del state["head.linear.bias"]
    src = tmp_path / "broken.safetensors"
    save_file(state, str(src))
    result = run("info", src)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{src} is a safetensors checkpoint in the timm layout, not a levit-np "
                                    f"weights file, and it does not convert: ")
    assert "missing key head.linear.bias" in result.output
