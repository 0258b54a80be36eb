"""Classic image codecs for rate-distortion comparisons: JPEG, JPEG 2000, WebP, AVIF, JPEG XL.

Each :class:`ClassicCodec` encodes an 8-bit RGB array at one quality setting
and decodes the bytes back. They come from ``imagecodecs`` (JPEG and WebP
fall back to Pillow), both in the optional ``bench`` extra::

    pip install -e ".[bench]"

A codec whose library is missing reports ``available() == False`` and the
benchmark skips it with a notice. ``sweep`` is the list of quality settings a
rate-distortion curve visits, from the lowest rate to the highest, chosen so
that Kodak images span about 0.1 to 3 bpp.
"""

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np


def _imagecodecs():
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


@dataclass(frozen=True)
class ClassicCodec:
    """One codec: ``encode(rgb uint8, quality) -> bytes``, ``decode(bytes) -> rgb uint8``."""

    name: str
    label: str
    sweep: tuple
    quality_meaning: str
    _encode: Callable
    _decode: Callable
    _available: Callable

    def available(self):
        return self._available()

    def encode(self, rgb, quality):
        return bytes(self._encode(np.ascontiguousarray(rgb, np.uint8), quality))

    def decode(self, data):
        return np.asarray(self._decode(data))[..., :3]


def _imagecodecs_has(name):
    def available():
        codecs = _imagecodecs()
        return codecs is not None and getattr(getattr(codecs, name.upper(), None), "available", False)
    return available


def _jpeg_encode(rgb, quality):
    codecs = _imagecodecs()
    if codecs is not None:
        return codecs.jpeg8_encode(rgb, level=quality)
    buffer = io.BytesIO()
    _pillow().fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _webp_encode(rgb, quality):
    codecs = _imagecodecs()
    if codecs is not None:
        return codecs.webp_encode(rgb, level=quality, lossless=False)
    buffer = io.BytesIO()
    _pillow().fromarray(rgb).save(buffer, format="WEBP", quality=quality)
    return buffer.getvalue()


def _decode_with(name):
    def decode(data):
        codecs = _imagecodecs()
        if codecs is not None:
            return getattr(codecs, f"{name}_decode")(data)
        return np.asarray(_pillow().open(io.BytesIO(data)).convert("RGB"))
    return decode


def _either(name):
    def available():
        return _imagecodecs_has(name)() or _pillow() is not None
    return available


CODECS = {
    "jpeg": ClassicCodec("jpeg", "JPEG", (2, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95),
                         "libjpeg quality", _jpeg_encode, _decode_with("jpeg8"), _either("jpeg8")),
    "jpeg2000": ClassicCodec("jpeg2000", "JPEG 2000", (20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42),
                             "OpenJPEG target PSNR (dB)",
                             lambda rgb, q: _imagecodecs().jpeg2k_encode(rgb, level=q),
                             lambda data: _imagecodecs().jpeg2k_decode(data), _imagecodecs_has("jpeg2k")),
    "webp": ClassicCodec("webp", "WebP", (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
                         "libwebp quality", _webp_encode, _decode_with("webp"), _either("webp")),
    "avif": ClassicCodec("avif", "AVIF", (0, 10, 20, 30, 40, 50, 60, 70, 80, 90),
                         "libavif quality (encoder speed 8)",
                         lambda rgb, q: _imagecodecs().avif_encode(rgb, level=q, speed=8),
                         lambda data: _imagecodecs().avif_decode(data), _imagecodecs_has("avif")),
    "jxl": ClassicCodec("jxl", "JPEG XL", (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
                        "libjxl quality",
                        lambda rgb, q: _imagecodecs().jpegxl_encode(rgb, level=q),
                        lambda data: _imagecodecs().jpegxl_decode(data), _imagecodecs_has("jpegxl")),
}
