"""The decoder: ``.gi`` bytes to an image (docs/algorithm.md §6.3; docs/format.md).

Decoding needs nothing but the bytes: parse (:func:`gi_numba.bitstream.read`),
de-quantise (:func:`gi_numba.quantize.dequantize`), render.
"""

import numpy as np

from . import bitstream
from .model import GaussianImage
from .quantize import dequantize


def decompress(data: bytes, height=None, width=None, scale=None, backend="cpu", max_pixels=None) -> np.ndarray:
    """Decode ``.gi`` bytes to a float32 ``[H, W, 3]`` image in ``[0, 1]`` (optionally resized).

    The file's size and the output's must each be within ``max_pixels``
    (:mod:`gi_numba.limits`; default 8192 x 8192).
    """
    return decoded_model(data, max_pixels).render(height=height, width=width, scale=scale, backend=backend,
                                                  max_pixels=max_pixels)


def decoded_model(data: bytes, max_pixels=None) -> GaussianImage:
    """The :class:`GaussianImage` a ``.gi`` file describes (colours as drawn, no filter)."""
    parsed = bitstream.read(data, max_pixels)
    return model_of_codes(parsed.codes, parsed.height, parsed.width, parsed.channels)


def model_of_codes(codes, height: int, width: int, channels: int = 3) -> GaussianImage:
    """The :class:`GaussianImage` that quantised Gaussians draw (de-quantised, no filter)."""
    params = dequantize(codes)
    return GaussianImage(params=params, lam=np.zeros(params.shape[0], np.float32), height=height, width=width,
                         channels=channels)
