"""CUDA projection (docs/algorithm.md §2): one thread per Gaussian, as :func:`~.project.project_gaussians`.

Each thread computes its Gaussian's conic, ellipse extent and tile box with
:func:`~.maths.project_one` compiled for the device, and counts the tiles of
its box its ellipse reaches (its entries), so binning can size its lists.
"""

from typing import NamedTuple

from numba import cuda

from . import maths
from .cuda_device import LINEAR, blocks_for, device_function

project_one = device_function(maths.project_one)
gaussian_band_rows = device_function(maths.gaussian_band_rows)
band_tile_rows = device_function(maths.band_tile_rows)


class DeviceProjection(NamedTuple):
    """Device arrays of the projection, as :func:`~.project.project_gaussians` returns on the host.

    ``conic`` ``(N, 3)`` float32, ``ellipse`` ``(N, 4)`` float32 and the tile
    ``box`` ``(N, 4)`` int32 ``(tx0, tx1, ty0, ty1)``.
    """

    conic: object
    ellipse: object
    box: object


@cuda.jit(device=True)
def gaussian_column_tile_rows(params, ellipse, box, g, column):
    """Tile rows ``[first, end)`` of Gaussian ``g``'s box its ellipse reaches in tile column ``column``.

    The same rows as the CPU's binning (:func:`~.binning.counting_sort`) finds.
    """
    first_row, last_row = gaussian_band_rows(params, ellipse, box, g, column)
    return band_tile_rows(first_row, last_row)


@cuda.jit
def _project_kernel(params, lam, n_tiles_x, n_tiles_y, conic, ellipse, box, count):
    """Projection of Gaussian ``g`` (one thread each), as :func:`~.project.project_gaussians`.

    ``count[g]`` is the number of tiles of its box its ellipse reaches, its
    entries (0 when it is not drawn: :func:`~.maths.project_one` then returns zeros).
    """
    g = cuda.grid(1)
    if g >= params.shape[0]:
        return
    drawn, A, B, C, tx0, tx1, ty0, ty1, slope, spread, ex, tx = project_one(
        params[g, 0], params[g, 1], params[g, 2], params[g, 3], params[g, 4], lam[g], n_tiles_x, n_tiles_y)
    conic[g, 0], conic[g, 1], conic[g, 2] = A, B, C
    box[g, 0], box[g, 1], box[g, 2], box[g, 3] = tx0, tx1, ty0, ty1
    ellipse[g, 0], ellipse[g, 1], ellipse[g, 2], ellipse[g, 3] = slope, spread, ex, tx
    total = 0
    for column in range(tx0, tx1):
        first, end = gaussian_column_tile_rows(params, ellipse, box, g, column)
        total += end - first
    count[g] = total


def project_on_device(params, lam, n_tiles_x, n_tiles_y, projection, count):
    """Fill the :class:`DeviceProjection` and ``count`` for device ``params`` and ``lam``."""
    if params.shape[0]:
        _project_kernel[blocks_for(params.shape[0]), LINEAR](params, lam, n_tiles_x, n_tiles_y, *projection, count)
