"""Reading images into ``[0, 1]`` float RGB and writing 8-bit PNGs (docs/algorithm.md §1).

Conventions, applied to every input:

- 8-bit values are divided by 255, 16-bit values by 65535; float input is
  clipped to ``[0, 1]``.
- Grayscale images are expanded to three equal RGB channels for fitting; the
  source channel count is remembered (``ImageInfo.channels == 1``) so renders
  of such a model are written back as grayscale PNGs.
- An alpha channel is dropped, with a notice (compositing onto a background
  would invent colours the user never saw).
- Multi-frame files (GIF, multi-page TIFF) use their first frame.
- CMYK (and YCCK, YCbCr, LAB, HSV) images are converted to RGB by Pillow.
- The size in the file's header is checked against the pixel limit
  (:mod:`gi_numba.limits`) before any pixel is decoded.
- 16-bit PNGs are decoded by :mod:`gi_numba.png16` at full precision (Pillow
  would keep only the high byte of 16-bit colour).
"""

import io
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from .errors import GIError
from .fileio import write_atomically
from .limits import check_pixels
from .png16 import is_png16, read_png16

#: Smallest image side the fit accepts.
MIN_SIDE = 2


@dataclass
class ImageInfo:
    """What was read: source bit depth and channel count, and any conversions made."""

    bit_depth: int
    channels: int
    notices: list = field(default_factory=list)


def example_image_path() -> Path:
    """Path of the small photo bundled with the package (a 256x176 crop of Kodak image 23, downscaled 2x)."""
    return Path(str(resources.files("gi_numba") / "data" / "parrots.png"))


def load_image(source, max_pixels=None, name=None) -> tuple:
    """Read an image file (a path, or its bytes) as float32 ``(H, W, 3)`` in ``[0, 1]`` plus an :class:`ImageInfo`.

    The image's size is read from its header and checked against
    ``max_pixels`` (:mod:`gi_numba.limits`) before its pixels are decoded.
    Raises :class:`GIError` for a missing, unreadable, too small or too large
    image; messages name it ``name`` (default: the path, or ``<bytes>``).
    """
    name = name or ("<bytes>" if isinstance(source, bytes) else str(source))
    if not isinstance(source, bytes):
        source = Path(source)
        if not source.exists():
            raise GIError(f"{name}: no such file")
        if source.is_dir():
            raise GIError(f"{name}: is a directory, not an image")
    notices = []
    try:
        head = _head(source)
        raw = read_png16(_bytes_of(source), max_pixels) if is_png16(head) else None
        if raw is None:
            raw = _read_with_pillow_header(source, head, name, max_pixels, notices)
    except GIError as exc:
        raise GIError(f"{name}: {exc}") from None
    except MemoryError:
        raise GIError(f"{name}: not enough memory to read this image") from None
    except Exception as exc:  # imageio and Pillow raise many types for undecodable data
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GIError(f"{name}: cannot be read as an image ({reason})") from None
    image, info = to_float_rgb(raw, name=name)
    info.notices[:0] = notices
    return image, info


def _head(source, size=32):
    """The first ``size`` bytes of a path's file or of bytes (enough to recognise the format)."""
    if isinstance(source, bytes):
        return source[:size]
    with open(source, "rb") as handle:
        return handle.read(size)


def _bytes_of(source):
    return source if isinstance(source, bytes) else source.read_bytes()


#: Pillow modes that are not RGB-like; Pillow converts them to RGB by its own rules (for CMYK JPEGs its decoder
#: has already undone Adobe's inverted CMYK and YCCK).
_CONVERTED_MODES = ("CMYK", "YCbCr", "LAB", "HSV")
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")


def _read_with_pillow_header(source, head, name, max_pixels, notices):
    """Decode an image once the size in its header (read by imageio's Pillow plugin) is within the limit.

    CMYK-like modes are converted to RGB (:data:`_CONVERTED_MODES`). A
    multi-frame file gives its first frame; a multi-page TIFF is read by
    Pillow, page 0 only, and a single-page TIFF by imageio's default reader,
    which keeps 16 bits per channel.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's decompression-bomb warning: our own limit applies instead
        with iio.imopen(source, "r", plugin="pillow") as file:
            height, width = file.properties(index=0).shape[:2]
            check_pixels(height, width, max_pixels)
            mode = file.metadata(index=0).get("mode")
            if mode in _CONVERTED_MODES:
                notices.append(f"{name}: {mode} image, converted to RGB")
                return file.read(index=0, mode="RGB")
            if head[:4] not in _TIFF_SIGNATURES or (file.properties(index=...).n_images or 1) > 1:
                return file.read(index=0)
        warnings.simplefilter("ignore", DeprecationWarning)  # imageio's TIFF reader warns about its own future
        return iio.imread(source, index=0, extension=".tif")


def to_float_rgb(raw, name="image") -> tuple:
    """Convert a decoded array to float32 ``(H, W, 3)`` in ``[0, 1]`` (see module notes)."""
    raw = np.asarray(raw)
    notices = []
    if raw.ndim == 2:
        raw = raw[:, :, None]
    if raw.ndim != 3 or raw.shape[2] not in (1, 2, 3, 4):
        raise GIError(f"{name}: unsupported image layout {raw.shape}")
    channels = raw.shape[2]
    if channels in (2, 4):
        notices.append(f"{name}: alpha channel dropped")
        raw = raw[:, :, : channels - 1]
        channels -= 1
    bit_depth, image = _normalise(raw, name)
    if bit_depth == 16:
        notices.append(f"{name}: 16-bit image, fitted at full precision and written back as 8-bit")
    if channels == 1:
        notices.append(f"{name}: grayscale image, fitted as three equal RGB channels")
        image = np.repeat(image, 3, axis=2)
    height, width = image.shape[:2]
    if height < MIN_SIDE or width < MIN_SIDE:
        raise GIError(f"{name}: image is {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    return np.ascontiguousarray(image, np.float32), ImageInfo(bit_depth, channels, notices)


def _normalise(raw, name):
    """Bit depth and ``[0, 1]`` float32 values of a decoded array."""
    if raw.dtype == np.bool_:
        return 1, raw.astype(np.float32)
    if raw.dtype == np.uint8:
        return 8, raw.astype(np.float32) / 255.0
    if raw.dtype == np.uint16:
        return 16, raw.astype(np.float32) / 65535.0
    if np.issubdtype(raw.dtype, np.integer):
        peak = 255 if raw.max(initial=0) <= 255 else 65535
        return (8 if peak == 255 else 16), np.clip(raw, 0, peak).astype(np.float32) / peak
    if np.issubdtype(raw.dtype, np.floating):
        if not np.isfinite(raw).all():
            raise GIError(f"{name}: image contains NaN or infinite values")
        return 32, np.clip(raw, 0.0, 1.0).astype(np.float32)
    raise GIError(f"{name}: unsupported pixel type {raw.dtype}")


#: Rows converted at a time by :func:`to_uint8`, so a large render needs no float64 copy of itself.
_ROWS_PER_CHUNK = 256


def to_uint8(image, channels=3) -> np.ndarray:
    """Round a ``[0, 1]`` ``(H, W, 3)`` image to 8 bits; ``channels=1`` averages to grayscale.

    Works in float64 on bands of rows: the extra memory is that of the 8-bit
    result, not of a float64 image.
    """
    image = np.asarray(image)
    out = np.empty(image.shape[:2] + (() if channels == 1 else (3,)), np.uint8)
    for top in range(0, image.shape[0], _ROWS_PER_CHUNK):
        band = np.clip(np.asarray(image[top:top + _ROWS_PER_CHUNK], np.float64), 0.0, 1.0)
        if channels == 1:
            band = band.mean(axis=2)
        out[top:top + _ROWS_PER_CHUNK] = np.rint(band * 255.0)
    return out


def png_bytes(image, channels=3) -> bytes:
    """A ``[0, 1]`` float image as the bytes of an 8-bit PNG (gray with ``channels=1``)."""
    buffer = io.BytesIO()
    iio.imwrite(buffer, to_uint8(image, channels), extension=".png")
    return buffer.getvalue()


def save_png(path, image, channels=3) -> None:
    """Write a ``[0, 1]`` float image as an 8-bit PNG, atomically."""
    write_atomically(path, png_bytes(image, channels))
