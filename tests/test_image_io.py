"""Reading every supported kind of image, and refusing what cannot be fitted."""

import struct
import zlib

import imageio.v3 as iio
import numpy as np
import pytest

from gi_numba.errors import GIError
from gi_numba.image_io import load_image, save_png, to_float_rgb


def _png_rgb16(path, pixels):
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


@pytest.fixture
def rgb8():
    return np.random.default_rng(0).integers(0, 256, (12, 17, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_formats_round_trip(tmp_path, rgb8, ext):
    path = tmp_path / f"x{ext}"
    iio.imwrite(path, rgb8, plugin="pillow", **({"lossless": True} if ext == ".webp" else {}))
    image, info = load_image(path)
    assert image.dtype == np.float32 and image.shape == (12, 17, 3)
    np.testing.assert_allclose(image, rgb8 / 255.0, atol=1e-7)
    assert info.channels == 3 and info.bit_depth == 8 and not info.notices


def test_jpeg_reads(tmp_path, rgb8):
    iio.imwrite(tmp_path / "x.jpg", rgb8)
    image, _ = load_image(tmp_path / "x.jpg")
    assert image.shape == (12, 17, 3) and 0 <= image.min() and image.max() <= 1


def test_sixteen_bit_grayscale(tmp_path):
    values = np.random.default_rng(1).integers(0, 65536, (9, 11), dtype=np.uint16)
    iio.imwrite(tmp_path / "g.png", values)
    image, info = load_image(tmp_path / "g.png")
    assert info.bit_depth == 16 and info.channels == 1
    np.testing.assert_allclose(image[:, :, 1], values / 65535.0, atol=1e-7)
    assert np.array_equal(image[:, :, 0], image[:, :, 2])
    assert any("grayscale" in n for n in info.notices) and any("16-bit" in n for n in info.notices)


def test_sixteen_bit_rgb_keeps_its_precision(tmp_path):
    values = np.random.default_rng(2).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    _png_rgb16(tmp_path / "c.png", values)
    image, info = load_image(tmp_path / "c.png")
    assert image.shape == (5, 7, 3)
    np.testing.assert_allclose(image, values / 65535.0, atol=1e-7)
    assert info.bit_depth == 16


def test_rgba_drops_alpha_with_a_notice(tmp_path):
    rgba = np.random.default_rng(3).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "a.png", rgba)
    image, info = load_image(tmp_path / "a.png")
    np.testing.assert_allclose(image, rgba[:, :, :3] / 255.0, atol=1e-7)
    assert info.notices == [f"{tmp_path / 'a.png'}: alpha channel dropped"]


def test_first_frame_of_an_animation(tmp_path, rgb8):
    iio.imwrite(tmp_path / "a.gif", np.stack([rgb8, 255 - rgb8]))
    image, _ = load_image(tmp_path / "a.gif")
    assert image.shape == (12, 17, 3)


@pytest.mark.parametrize("shape", [(1, 10, 3), (10, 1), (1, 1, 3)])
def test_too_small(shape):
    with pytest.raises(GIError, match="at least 2x2"):
        to_float_rgb(np.zeros(shape, np.uint8))


def test_not_an_image(tmp_path):
    (tmp_path / "fake.png").write_text("this is not a picture")
    with pytest.raises(GIError, match="cannot be read as an image"):
        load_image(tmp_path / "fake.png")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(GIError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(GIError, match="directory"):
        load_image(tmp_path)


def test_float_input_is_clipped_and_nan_refused():
    image, info = to_float_rgb(np.full((3, 3, 3), 1.5))
    assert image.max() == 1.0 and info.bit_depth == 32
    with pytest.raises(GIError, match="NaN"):
        to_float_rgb(np.full((3, 3, 3), np.nan))


def test_save_png_round_trips_and_leaves_no_temporary_file(tmp_path, rgb8):
    save_png(tmp_path / "out.png", rgb8 / 255.0)
    assert np.array_equal(iio.imread(tmp_path / "out.png"), rgb8)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_save_png_grayscale(tmp_path):
    save_png(tmp_path / "g.png", np.full((4, 5, 3), 0.5), channels=1)
    assert iio.imread(tmp_path / "g.png").shape == (4, 5)


def test_save_png_to_a_missing_folder(tmp_path):
    with pytest.raises(GIError, match="cannot write"):
        save_png(tmp_path / "missing" / "x.png", np.zeros((2, 2, 3)))


def test_png16_decoder_agrees_with_pillow_on_filtered_rows(tmp_path):
    """Pillow writes filtered rows (Sub/Up/Average/Paeth); it reads 16-bit grayscale correctly."""
    from gi_numba.png16 import read_png16

    y, x = np.mgrid[0:40, 0:50]
    values = ((np.sin(x / 5.0) * np.cos(y / 7.0) + 1) * 30000 + x * y).astype(np.uint16)
    iio.imwrite(tmp_path / "g.png", values)
    assert np.array_equal(read_png16((tmp_path / "g.png").read_bytes())[:, :, 0], iio.imread(tmp_path / "g.png"))


def test_damaged_png16(tmp_path):
    values = np.arange(60, dtype=np.uint16).reshape(4, 5, 3) * 1000
    _png_rgb16(tmp_path / "c.png", values)
    data = (tmp_path / "c.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:60])
    with pytest.raises(GIError, match="cannot be read as an image"):
        load_image(tmp_path / "cut.png")
