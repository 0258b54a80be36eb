"""Projection: per-Gaussian conic, 3-sigma box and tile range (docs/algorithm.md §2).

This is the first of three plain steps (project -> bin -> rasterise). It runs
once per iteration over the ``N`` Gaussians and costs microseconds.
"""

import numba
import numpy as np

from .maths import TILE, project_one


@numba.njit(parallel=True, cache=True)
def project_gaussians(params, lam, grid_x, grid_y):
    """Conics, tile boxes and ellipse extents of all Gaussians (tutorial: step 2 of docs/tutorial.md).

    Returns
    -------
    conic : (N, 3) float32
        ``(A, B, C)``, the inverse of the filtered covariance ``S'``.
    box : (N, 4) int32
        Tile box ``(tx0, tx1, ty0, ty1)``, upper ends exclusive; all zero for a
        Gaussian that is not rendered (``det <= 0`` or not finite, minor radius
        < 1, empty box, or a mean that is not finite).
    ellipse : (N, 4) float32
        ``(slope, spread, ex, tx)`` of the ellipse ``alpha >= 1/255`` of the
        filtered covariance ``(a', b', c')``: ``b'/a'``, ``det/a'^2``, its
        half-width ``sqrt(2 ln255 a')`` and the column offset
        ``b' sqrt(2 ln255 / c')`` of its lowest point
        (:func:`~gi_numba.raster.maths.row_range`). Binning uses them to list
        only the tiles, and the rows of each tile, the ellipse reaches.
    """
    n = params.shape[0]
    conic = np.zeros((n, 3), np.float32)
    box = np.zeros((n, 4), np.int32)
    ellipse = np.zeros((n, 4), np.float32)
    for g in numba.prange(n):
        drawn, A, B, C, tx0, tx1, ty0, ty1, slope, spread, ex, tx = project_one(
            params[g, 0], params[g, 1], params[g, 2], params[g, 3], params[g, 4], lam[g], grid_x, grid_y)
        if drawn:
            conic[g, 0], conic[g, 1], conic[g, 2] = A, B, C
            box[g, 0], box[g, 1], box[g, 2], box[g, 3] = tx0, tx1, ty0, ty1
            ellipse[g, 0], ellipse[g, 1], ellipse[g, 2], ellipse[g, 3] = slope, spread, ex, tx
    return conic, box, ellipse


def tile_grid(height, width):
    """Number of tile columns and rows covering an image."""
    return (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
