"""Fuzzing image decoding (levit_np.images.preprocessing): mutated PNG, JPEG, BMP, GIF, TIFF, WebP and PPM files,
and headers claiming huge sizes, through the whole evaluation transform. See tests/fuzzing.py for the property."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, features

from levit_np.errors import ImageError
from levit_np.images.preprocessing import DEFAULT_MAX_PIXELS, IMAGENET_MEAN, IMAGENET_STD, preprocess

from fuzzing import assert_reader_contract, fuzz_settings, mutated, write_case

LOW = (0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
HIGH = (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)


def _encoded(fmt: str, mode: str, **options) -> bytes:
    rng = np.random.default_rng(len(fmt) + len(mode))
    pixels = rng.integers(0, 256, (21, 34, 4), dtype=np.uint8)
    img = Image.fromarray(pixels, "RGBA").convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


SEEDS = {
    "png": _encoded("PNG", "RGB"), "png-palette": _encoded("PNG", "P"), "png-rgba": _encoded("PNG", "RGBA"),
    "png-16bit": _encoded("PNG", "I;16"), "jpeg": _encoded("JPEG", "RGB", quality=80),
    "jpeg-progressive": _encoded("JPEG", "L", progressive=True), "bmp": _encoded("BMP", "RGB"),
    "gif": _encoded("GIF", "P"), "tiff": _encoded("TIFF", "RGB", compression="tiff_lzw"),
    "ppm": _encoded("PPM", "RGB"),
}
if features.check("webp"):
    SEEDS["webp"] = _encoded("WEBP", "RGB", quality=70)


def _check(tmp_path_factory, data: bytes) -> None:
    path = write_case(tmp_path_factory, "case.img", data)
    x = assert_reader_contract(lambda: preprocess(path), len(data), memory_factor=64)
    if x is not None:  # a decoded image is always the normalised 224 x 224 crop
        assert x.shape == (3, 224, 224) and x.dtype == np.float32
        assert np.isfinite(x).all()
        assert (x >= LOW[:, None, None] - 1e-5).all() and (x <= HIGH[:, None, None] + 1e-5).all()


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_seed_images_decode(tmp_path_factory, kind):
    _check(tmp_path_factory, SEEDS[kind])


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # on damaged TIFF tags
@fuzz_settings(ci_examples=400)
@given(data=st.sampled_from(sorted(SEEDS)).flatmap(lambda kind: mutated(SEEDS[kind])))
def test_fuzz_mutated_images(tmp_path_factory, data):
    """Bit flips, overwrites and truncation anywhere in an image of each format."""
    _check(tmp_path_factory, data)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with one tiny IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


@fuzz_settings(ci_examples=60)
@given(width=st.sampled_from([1, 300, 2**15, 2**16, 2**31 - 1]), height=st.sampled_from([1, 300, 2**15, 2**31 - 1]))
def test_fuzz_claimed_sizes(tmp_path_factory, width, height):
    """Headers claiming up to 2**31 x 2**31 pixels: refused before decoding (the decompression-bomb guard)
    or reported as truncated; never allocated."""
    data = _png_claiming(width, height)
    path = write_case(tmp_path_factory, "claims.png", data)
    assert_reader_contract(lambda: preprocess(path), len(data))
    if width * height > DEFAULT_MAX_PIXELS:
        with pytest.raises(ImageError, match="too large"):
            preprocess(path)


@pytest.mark.parametrize("width,height", [(1, 32768), (40000, 2), (3, 2**20)])
def test_extreme_aspect_ratio_is_refused_before_resizing(tmp_path, width, height):
    """Found by fuzzing: a 1 x 32768 PNG (well under the pixel limit) was resized to 256 x 8388608 pixels,
    6 GiB; such images are now refused before the resize."""
    path = tmp_path / "thin.png"
    Image.new("L", (width, height)).save(path)
    x = assert_reader_contract(lambda: preprocess(path), path.stat().st_size)
    assert x is None
    with pytest.raises(ImageError, match="aspect ratio too extreme"):
        preprocess(path)
    preprocess(_thin_but_fine(tmp_path))  # 1 x 300 becomes 256 x 76800: still read


def _thin_but_fine(tmp_path):
    path = tmp_path / "fine.png"
    Image.new("RGB", (1, 300)).save(path)
    return path
