"""Rasterisation backends (ALGORITHM.md §2-§3).

Three plain steps, each in its own module: :mod:`.project` (conic and tile
box of every Gaussian), :mod:`.binning` (per-tile Gaussian lists) and the
backend's tile kernels (:mod:`.cpu`). :mod:`.reference` is the slow dense
NumPy renderer the kernels are tested against; :mod:`.maths` holds the
formulas all of them share.
"""

from ..errors import GIError
from .pipeline import CpuRasterizer

BACKENDS = ("auto", "cpu")


def make_rasterizer(backend, height, width):
    """A rasteriser for an ``height x width`` canvas on the named backend."""
    if backend not in BACKENDS:
        raise GIError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return CpuRasterizer(height, width)
