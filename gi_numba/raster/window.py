"""Rendering a window of an image: only the kernel tiles it touches, with the values of the whole render.

A window ``(x, y, w, h)`` is drawn on a canvas that starts at the kernel tile
boundary at or before ``(x, y)`` (columns in steps of :data:`~.maths.TILE`,
rows of :data:`~.maths.TILE_ROWS`) and ends at the kernel tile after the
window, or the image's edge. Every entry then covers the same rows as in the
whole image, so each pixel sums the same terms in the same order: the window
is bit for bit the same pixels of the whole render.
"""

import numpy as np

from . import make_rasterizer
from .maths import TILE, TILE_ROWS


def render_window(params, lam, height, width, window, backend="cpu") -> np.ndarray:
    """The clamped ``(h, w, 3)`` render of ``window = (x, y, w, h)`` of a ``height x width`` image.

    The rasteriser writes straight into a channel-last canvas (its ``(3, H, W)``
    output is a transposed view of it): an ``(H, W, 3)`` image without a copy.
    """
    x, y, w, h = window
    x0, y0 = x - x % TILE, y - y % TILE_ROWS
    y1 = min(-(-(y + h) // TILE_ROWS) * TILE_ROWS, height)
    shifted = np.array(params, np.float32)
    shifted[:, 0] -= x0
    shifted[:, 1] -= y0
    canvas = np.empty((y1 - y0, x + w - x0, 3), np.float32)
    rasterizer = make_rasterizer(backend, y1 - y0, x + w - x0)
    rasterizer.render(shifted, np.ascontiguousarray(lam, np.float32), out=canvas.transpose(2, 0, 1))
    return np.ascontiguousarray(canvas[y - y0:y - y0 + h, x - x0:])
