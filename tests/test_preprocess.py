"""Preprocessing: against the official transform's output, size arithmetic, every image mode, bad files."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from levit_np.errors import ImageError
from levit_np.images.preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    center_crop_box,
    open_image,
    preprocess,
    preprocess_batch,
    resize_size,
    resized_shape,
    to_normalized_array,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EXPECTED = SHARED / "fixtures" / "official" / "LeViT_128S_expected.npz"
IMAGES = SHARED / "images"

# ---------------------------------------------------------------------------------------------- official output


@pytest.fixture(scope="module")
def official():
    if not EXPECTED.is_file():
        pytest.skip(f"official fixture not found at {EXPECTED} (it lives in the shared folder beside the repo)")
    with np.load(EXPECTED, allow_pickle=False) as f:
        return list(f["image_names"]), f["x_images"]


@pytest.mark.parametrize("i", range(14))
def test_matches_official_transform(official, i):
    names, x_images = official
    path = IMAGES / names[i]
    actual = preprocess(path)
    err = float(np.max(np.abs(actual - x_images[i])))
    print(f"{names[i]}: max |preprocess - official| = {err:.3g}")
    assert actual.shape == (3, 224, 224) and actual.dtype == np.float32
    np.testing.assert_allclose(actual, x_images[i], rtol=0, atol=1e-5, err_msg=f"{names[i]}: max abs err {err:.3g}")


def test_official_batch(official):
    names, x_images = official
    batch = preprocess_batch([IMAGES / n for n in names])
    assert batch.shape == (len(names), 3, 224, 224) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, x_images, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------- size arithmetic


@pytest.mark.parametrize(
    ("size", "crop_pct", "expected"),
    [
        (224, 0.875, 256),  # official LeViT: int(256 / 224 * 224)
        (224, 0.9, 248),  # timm's LeViT configs: floor(248.89)
        (384, 0.875, 438),  # official int(256 / 224 * 384) = int(438.86)
        (380, 0.95, 400),  # exactly 400 in decimal arithmetic; the epsilon guard keeps it from becoming 399
        (224, 1.0, 224),
    ],
)
def test_resize_size(size, crop_pct, expected):
    assert resize_size(size, crop_pct) == expected


@pytest.mark.parametrize("crop_pct", [0.0, -0.5, 1.01])
def test_resize_size_rejects_bad_crop_pct(crop_pct):
    with pytest.raises(ValueError):
        resize_size(224, crop_pct)


@pytest.mark.parametrize(
    ("wh", "short", "expected"),
    [
        ((1280, 720), 256, (455, 256)),  # 455.11 -> 455
        ((512, 418), 256, (313, 256)),  # 313.57 -> 313: truncated, not rounded
        ((418, 512), 256, (256, 313)),  # portrait: same, transposed
        ((1000, 872), 256, (293, 256)),  # 293.58 -> 293
        ((300, 1000), 256, (256, 853)),  # 853.33
        ((3, 1000), 256, (256, 85333)),  # extreme aspect ratio
        ((500, 500), 256, (256, 256)),
        ((256, 300), 256, (256, 300)),  # shorter side already right: unchanged
        ((500, 400), 248, (310, 248)),  # crop_pct 0.9: 310.0 exactly
    ],
)
def test_resized_shape(wh, short, expected):
    assert resized_shape(wh, short) == expected


@pytest.mark.parametrize(
    ("wh", "expected"),
    [
        ((256, 256), (16, 16, 240, 240)),
        ((224, 224), (0, 0, 224, 224)),
        ((225, 224), (0, 0, 224, 224)),  # margin 1: round(0.5) = 0 (half to even)
        ((227, 224), (2, 0, 226, 224)),  # margin 3: round(1.5) = 2
        ((229, 224), (2, 0, 226, 224)),  # margin 5: round(2.5) = 2
        ((455, 256), (116, 16, 340, 240)),  # margin 231: round(115.5) = 116
        ((256, 313), (16, 44, 240, 268)),  # margin 89: round(44.5) = 44
    ],
)
def test_center_crop_box(wh, expected):
    assert center_crop_box(wh, 224) == expected


def test_center_crop_box_too_small():
    with pytest.raises(ValueError):
        center_crop_box((223, 300), 224)


def _constant(rgb, size=224):  # (3,) uint8 colour -> (3, size, size): the transform of a one-colour image
    value = (np.asarray(rgb, np.float32) / np.float32(255) - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    return np.broadcast_to(value[:, None, None], (3, size, size))


@pytest.mark.parametrize(("crop_pct", "size"), [(0.875, 224), (0.9, 224), (1.0, 160)])
def test_constant_image_normalisation(crop_pct, size):
    img = Image.new("RGB", (333, 271), (12, 130, 250))
    out = preprocess(img, crop_pct=crop_pct, size=size)
    assert out.shape == (3, size, size) and out.dtype == np.float32
    np.testing.assert_allclose(out, _constant((12, 130, 250), size), rtol=0, atol=1e-6)


def test_table_lookup_normalisation_has_the_bits_of_torchvision_arithmetic():
    """ToTensor then Normalize computed pixel by pixel in float32 (torchvision's order) = the table lookup, bit for
    bit, on every value 0..255 of every channel, in a non-square image (width and height must not swap)."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    pixels[1:6, :52, :] = np.arange(260, dtype=np.int64).reshape(5, 52, 1) % 256  # every value, in each channel
    chw = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    mean = np.asarray(IMAGENET_MEAN, np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, np.float32)[:, None, None]
    out = to_normalized_array(Image.fromarray(pixels, mode="RGB"))
    assert out.shape == (3, 37, 53) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, (chw - mean) / std)


# ---------------------------------------------------------------------------------------------- image modes


def _rng_array(shape, high=256, dtype=np.uint8, seed=0):
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)


def _check(out, size=224):
    assert out.shape == (3, size, size) and out.dtype == np.float32
    assert np.all(np.isfinite(out))


def _gray(values):  # (H, W) uint8 -> the RGB image the official loader makes from an L image
    return Image.fromarray(np.repeat(values[:, :, None], 3, axis=2), mode="RGB")


def test_mode_l_equals_rgb_with_equal_channels():
    v = _rng_array((260, 300))
    out = preprocess(Image.fromarray(v, mode="L"))
    _check(out)
    np.testing.assert_array_equal(out, preprocess(_gray(v)))
    unnormalised = out * np.float32(IMAGENET_STD)[:, None, None] + np.float32(IMAGENET_MEAN)[:, None, None]
    np.testing.assert_allclose(unnormalised[0], unnormalised[1], atol=1e-6)
    np.testing.assert_allclose(unnormalised[0], unnormalised[2], atol=1e-6)


def _palette_image():
    idx = _rng_array((250, 310), high=4)
    palette = np.array([[10, 20, 30], [200, 100, 0], [0, 255, 0], [255, 255, 255]], np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette(palette.ravel().tolist())
    return img, Image.fromarray(palette[idx], mode="RGB")


def test_mode_p_is_palette_lookup():
    img, rgb = _palette_image()
    out = preprocess(img)
    _check(out)
    np.testing.assert_array_equal(out, preprocess(rgb))


@pytest.mark.parametrize("transparency", [1, bytes([255, 0, 128, 255])], ids=["index", "bytes"])
def test_mode_p_with_transparency_ignores_it(tmp_path, transparency):
    img, rgb = _palette_image()
    path = tmp_path / "palette.png"
    img.save(path, transparency=transparency)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "convert to RGBA" warning leaks out
        loaded = open_image(path)
        assert loaded.mode == "P" and "transparency" in loaded.info
        out = preprocess(path)
    _check(out)
    np.testing.assert_array_equal(out, preprocess(rgb))


def test_mode_rgba_drops_alpha_without_compositing():
    rgba = _rng_array((240, 320, 4), seed=1)
    rgba[:40, :, 3] = 0  # fully transparent rows keep their colour, as with PIL's convert('RGB')
    out = preprocess(Image.fromarray(rgba, mode="RGBA"))
    _check(out)
    np.testing.assert_array_equal(out, preprocess(Image.fromarray(np.ascontiguousarray(rgba[:, :, :3]), mode="RGB")))


def test_mode_la_drops_alpha():
    la = _rng_array((240, 320, 2), seed=2)
    out = preprocess(Image.fromarray(la, mode="LA"))
    _check(out)
    np.testing.assert_array_equal(out, preprocess(_gray(np.ascontiguousarray(la[:, :, 0]))))


def test_mode_cmyk(tmp_path):
    white = preprocess(Image.new("CMYK", (230, 230), (0, 0, 0, 0)))
    black = preprocess(Image.new("CMYK", (230, 230), (0, 0, 0, 255)))
    np.testing.assert_allclose(white, _constant((255, 255, 255)), rtol=0, atol=1e-6)
    np.testing.assert_allclose(black, _constant((0, 0, 0)), rtol=0, atol=1e-6)
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(_rng_array((250, 300, 4), seed=3), mode="CMYK").save(path, quality=95)
    loaded = open_image(path)
    assert loaded.mode == "CMYK"
    out = preprocess(path)
    _check(out)
    np.testing.assert_array_equal(out, preprocess(loaded.convert("RGB")))  # the official loader's conversion


def test_mode_ycbcr():
    img = Image.fromarray(_rng_array((250, 300, 3), seed=4), mode="RGB").convert("YCbCr")
    out = preprocess(img)
    _check(out)
    np.testing.assert_array_equal(out, preprocess(img.convert("RGB")))


def test_mode_1_binary():
    bits = _rng_array((250, 300), high=2, seed=5).astype(bool)
    img = Image.fromarray(bits)
    assert img.mode == "1"
    out = preprocess(img)
    _check(out)
    np.testing.assert_array_equal(out, preprocess(_gray(bits.astype(np.uint8) * 255)))


def test_mode_i16_png_scales_by_257(tmp_path):
    v = _rng_array((250, 300), seed=6)
    path = tmp_path / "gray16.png"
    Image.fromarray(v.astype(np.uint16) * 257).save(path)
    loaded = open_image(path)
    assert loaded.mode.startswith("I;16")
    out = preprocess(path)
    _check(out)
    np.testing.assert_array_equal(out, preprocess(_gray(v)))


@pytest.mark.parametrize("dtype", ["<u2", ">u2"], ids=["I;16", "I;16B"])
def test_mode_i16_in_memory(dtype):
    v = _rng_array((250, 300), seed=7)
    img = Image.fromarray((v.astype(np.uint16) * 257).astype(dtype))
    assert img.mode == ("I;16" if dtype == "<u2" else "I;16B")
    out = preprocess(img)
    _check(out)
    np.testing.assert_array_equal(out, preprocess(_gray(v)))


def test_mode_i_treated_as_16_bit_and_clipped():
    v = _rng_array((250, 300), seed=8)
    samples = v.astype(np.int32) * 257
    samples[:10] = -5  # below range -> 0
    samples[-10:] = 70000  # above range -> 255
    expected = v.copy()
    expected[:10] = 0
    expected[-10:] = 255
    img = Image.fromarray(samples, mode="I")
    out = preprocess(img)
    _check(out)
    np.testing.assert_array_equal(out, preprocess(_gray(expected)))


@pytest.mark.parametrize("mode", ["PA", "RGBX", "RGBa", "HSV", "LAB", "F"])
def test_other_modes_follow_pil_convert(mode):
    img = Image.fromarray(_rng_array((240, 250, 4), seed=11), mode="RGBA").convert(mode)
    out = preprocess(img)
    _check(out)
    np.testing.assert_array_equal(out, preprocess(img.convert("RGB")))


def test_unsupported_mode():
    with pytest.raises(ImageError) as info:
        preprocess(Image.new("La", (230, 230)))
    assert "\n" not in str(info.value) and "La" in str(info.value)


def test_exif_orientation_ignored_by_default(tmp_path):
    arr = _rng_array((240, 300, 3), seed=9)
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    plain = open_image(path)
    np.testing.assert_array_equal(preprocess(path), preprocess(plain.copy()))
    rotated = preprocess(path, exif_transpose=True)
    np.testing.assert_array_equal(rotated, preprocess(plain.transpose(Image.Transpose.ROTATE_270)))


def test_preprocess_batch_shapes():
    imgs = [Image.new("RGB", (300, 250), (i, i, i)) for i in (0, 128, 255)]
    batch = preprocess_batch(imgs, crop_pct=0.9)
    assert batch.shape == (3, 3, 224, 224) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[1], preprocess(imgs[1], crop_pct=0.9))
    assert preprocess_batch([]).shape == (0, 3, 224, 224)


def test_rejects_other_input_types():
    with pytest.raises(TypeError):
        preprocess(np.zeros((224, 224, 3), np.uint8))


# ---------------------------------------------------------------------------------------------- bad files


def _assert_image_error(path, *, fn=open_image, **kwargs):
    with pytest.raises(ImageError) as info:
        fn(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert Path(path).name in message, message
    return message


def _real_file(tmp_path, fmt):
    path = tmp_path / f"real.{fmt}"
    Image.fromarray(_rng_array((200, 240, 3), seed=10)).save(path)
    return path


def test_missing_file(tmp_path):
    assert "no such file" in _assert_image_error(tmp_path / "nope.jpg")


def test_control_characters_in_name_stay_on_one_line(tmp_path):
    with pytest.raises(ImageError) as info:
        open_image(tmp_path / "two\nlines.jpg")
    assert "\n" not in str(info.value) and "two\\nlines.jpg" in str(info.value)


def test_directory(tmp_path):
    (tmp_path / "folder.jpg").mkdir()
    assert "directory" in _assert_image_error(tmp_path / "folder.jpg")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty" in _assert_image_error(tmp_path / "empty.png")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture\nsecond line\n")
    assert "not an image" in _assert_image_error(tmp_path / "notes.jpg")


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_truncated(tmp_path, fmt):
    data = _real_file(tmp_path, fmt).read_bytes()
    path = tmp_path / f"half.{fmt}"
    path.write_bytes(data[: len(data) // 2])
    _assert_image_error(path)
    _assert_image_error(path, fn=preprocess)  # the same error through the public transform


def _png_header(width, height):
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [100_000, 10_000], ids=["pil-error", "pil-warning"])
def test_decompression_bomb_header(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(side, side))
    limit = Image.MAX_IMAGE_PIXELS
    assert "too large" in _assert_image_error(path)
    assert Image.MAX_IMAGE_PIXELS == limit  # no global state changed


def test_decompression_bomb_lowered_limit(tmp_path):
    path = _real_file(tmp_path, "png")
    assert "too large" in _assert_image_error(path, max_pixels=1000)
    assert open_image(path).size == (240, 200)  # the default limit accepts it


def test_pil_header_check_warning_is_error_even_without_own_limit(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(10_000, 10_000))
    assert "too large" in _assert_image_error(path, max_pixels=None)


def test_open_image_decodes_fully(tmp_path):
    img = open_image(_real_file(tmp_path, "jpg"))
    assert img.size == (240, 200) and img.mode == "RGB"
    assert np.asarray(img).shape == (200, 240, 3)


def test_lazily_opened_truncated_pil_image(tmp_path):
    data = _real_file(tmp_path, "png").read_bytes()
    img = Image.open(io.BytesIO(data[: len(data) // 2]))  # header parses, pixels are missing
    with pytest.raises(ImageError) as info:
        preprocess(img)
    assert "\n" not in str(info.value)
