"""A small decoder for 16-bit colour PNGs.

Pillow, behind imageio, reads 16-bit RGB(A) PNGs as 8-bit by dropping the low
byte. This module decodes non-interlaced 16-bit PNGs (any colour type without
a palette) at full precision: parse the chunks, inflate ``IDAT``, undo the
per-row filters (PNG specification §9), reinterpret as big-endian ``uint16``.
"""

import struct
import zlib

import numba
import numpy as np

from .limits import check_pixels

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


def is_png16(header: bytes) -> bool:
    """Whether a file starting with ``header`` (at least 26 bytes) is a 16-bit PNG."""
    return header[:8] == SIGNATURE and len(header) >= 26 and header[12:16] == b"IHDR" and header[24] == 16


def read_png16(data: bytes, max_pixels=None) -> np.ndarray | None:
    """Decode a 16-bit PNG to ``uint16`` ``(H, W, C)``; ``None`` for layouts left to Pillow (interlaced).

    The size in ``IHDR`` is checked against ``max_pixels`` (:mod:`gi_numba.limits`)
    before anything is inflated, and no more than that size is inflated.
    Raises ``ValueError`` for damaged data.
    """
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if depth != 16 or colour not in _CHANNELS or interlace != 0:
        return None
    check_pixels(height, width, max_pixels)
    channels = _CHANNELS[colour]
    idat, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
        if kind == b"IEND":
            break
    stride = width * channels * 2
    try:
        raw = np.frombuffer(zlib.decompressobj().decompress(b"".join(idat), height * (stride + 1)), np.uint8)
    except zlib.error as exc:
        raise ValueError(f"damaged PNG data ({exc})") from None
    if raw.size < height * (stride + 1):
        raise ValueError("truncated PNG data")
    rows = _unfilter(raw, height, stride, channels * 2)
    return rows.view(">u2").reshape(height, width, channels).astype(np.uint16)


@numba.njit(cache=True)
def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


@numba.njit(cache=True)
def _unfilter(raw, height, stride, bpp):
    """Undo the PNG row filters (None, Sub, Up, Average, Paeth)."""
    out = np.zeros((height, stride), np.uint8)
    pos = 0
    for y in range(height):
        kind = raw[pos]
        pos += 1
        if kind > 4:
            raise ValueError("damaged PNG data (unknown row filter)")
        for x in range(stride):
            a = np.int32(out[y, x - bpp]) if x >= bpp else 0
            b = np.int32(out[y - 1, x]) if y > 0 else 0
            c = np.int32(out[y - 1, x - bpp]) if x >= bpp and y > 0 else 0
            f = np.int32(raw[pos + x])
            if kind == 1:
                f += a
            elif kind == 2:
                f += b
            elif kind == 3:
                f += (a + b) // 2
            elif kind == 4:
                f += _paeth(a, b, c)
            out[y, x] = f & 255
        pos += stride
    return out
