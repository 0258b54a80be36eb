"""Pictures in notebooks: a :class:`~gi_numba.model.GaussianImage` shows itself, and :func:`show_gaussians`
draws where its Gaussians sit.

Jupyter calls an object's ``_repr_png_`` to display it. Both are drawn small
by default (the longer side at most :data:`DISPLAY_SIDE` pixels), rendered at
that size rather than shrunk, since the representation renders at any scale.
"""

import numpy as np

from .image_io import png_bytes, save_png
from .snapshots import centres_overlay

#: Longest side, in pixels, of what a notebook shows unless asked otherwise.
DISPLAY_SIDE = 512


def display_scale(height, width, side=DISPLAY_SIDE) -> float:
    """The scale that fits ``height x width`` into ``side`` pixels (never above 1)."""
    return min(1.0, side / max(height, width))


class Picture:
    """An ``(H, W, 3)`` float image in ``[0, 1]`` that a notebook displays; :meth:`save` writes it as PNG."""

    def __init__(self, array):
        self.array = np.asarray(array, np.float32)

    def _repr_png_(self):
        return png_bytes(self.array)

    def save(self, path):
        save_png(path, self.array)


def show_gaussians(model, side=DISPLAY_SIDE) -> "Picture":
    """The model's render, darkened, with a red dot at each Gaussian's centre (as ``gi fit --snapshots`` draws).

    Drawn with the longer side at most ``side`` pixels; returns a :class:`Picture`.
    """
    scale = display_scale(model.height, model.width, side)
    render = model.render(scale=scale)
    means = model.means * np.array([render.shape[1] / model.width, render.shape[0] / model.height], np.float32)
    return Picture(centres_overlay(render, means))
