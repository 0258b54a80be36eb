"""Tile intersection: which Gaussians each 16x16 tile must visit (ALGORITHM.md §2).

A Gaussian is listed in a tile of its box only when its ellipse
``alpha >= 1/255`` reaches the tile: the 3-sigma box is a square around an
ellipse that is often long and thin, and most of its tiles would hold no
term. For each tile column of the box,
:func:`~gi_numba.raster.maths.column_tile_rows` gives the tile rows the
ellipse reaches over that column. Then a counting sort by tile id; within a
tile, Gaussians keep their index order, so every run produces the same lists.

Each (tile, Gaussian) pair is an *entry*. Besides the tile-sorted entry list,
every entry also gets a *slot* in a Gaussian-sorted array (a Gaussian's
entries column by column, top to bottom): the rasteriser writes an entry's
gradient partials to its slot, and the reduction then sums each Gaussian's
contiguous slots (no atomics, same bits on any thread count).
"""

import numba
import numpy as np

from ..errors import GIError
from .maths import gaussian_column_tile_rows

#: Most (tile, Gaussian) entries one pass may hold: 2^28 entries take about
#: 10 GiB with their gradient partials. More means Gaussians covering
#: thousands of tiles each; it is refused with a clear error rather than
#: exhausting memory.
MAX_ENTRIES = 2 ** 28


@numba.njit(cache=True)
def count_entries(box):
    """Number of (tile, Gaussian) entries the boxes make."""
    total = 0
    for g in range(box.shape[0]):
        total += (box[g, 1] - box[g, 0]) * (box[g, 3] - box[g, 2])
    return total


def check_entry_budget(entries, n_gaussians):
    """Raise :class:`GIError` when ``entries`` tile-list entries exceed :data:`MAX_ENTRIES`."""
    if entries > MAX_ENTRIES:
        raise GIError(f"the Gaussians cover {entries} (tile, Gaussian) pairs, more than the {MAX_ENTRIES} "
                      f"the tile lists may hold ({entries / max(n_gaussians, 1):.0f} tiles per Gaussian): "
                      "the covariances have grown far beyond the image scale")


def bin_gaussians(params, box, ellipse, n_tiles_x, n_tiles_y):
    """Tile lists of the projected Gaussians (tutorial: step 2 of docs/tutorial.md).

    A counting sort by tile, one band of tile rows per thread
    (:func:`counting_sort`); the lists are the same whatever the thread count.

    Parameters
    ----------
    params : (N, 8) float32
        The Gaussians (their means are used).
    box, ellipse
        Tile boxes ``(tx0, tx1, ty0, ty1)`` and ellipse extents from
        :func:`~gi_numba.raster.project.project_gaussians`.

    Returns
    -------
    tile_start : (T + 1,) int64
        Entries of tile ``t`` (row-major, ``t = ty * n_tiles_x + tx``) are
        ``tile_start[t]:tile_start[t + 1]``.
    entry_gaussian : (E,) int32
        Gaussian index of each entry.
    entry_slot : (E,) int32
        Slot of each entry in the Gaussian-sorted partials array.
    gaussian_start : (N + 1,) int64
        Slots of Gaussian ``g`` are ``gaussian_start[g]:gaussian_start[g + 1]``.
    """
    return counting_sort(params, box, ellipse, n_tiles_x, n_tiles_y, numba.get_num_threads())


@numba.njit(parallel=True, cache=True)
def tile_rows_of_columns(params, box, ellipse):
    """Tile rows ``[first, end)`` the ellipse reaches in each tile column of each box.

    :func:`~.maths.column_tile_rows` of every column; column ``c`` of
    Gaussian ``g`` (``c`` from ``column_start[g]``) is tile column
    ``box[g, 0] + c - column_start[g]``. Also returns each Gaussian's number
    of entries.
    """
    n = box.shape[0]
    column_start = np.zeros(n + 1, np.int64)
    for g in range(n):
        column_start[g + 1] = column_start[g] + box[g, 1] - box[g, 0]
    first = np.empty(column_start[n], np.int64)
    end = np.empty(column_start[n], np.int64)
    n_entries = np.zeros(n, np.int64)
    for g in numba.prange(n):
        for c in range(column_start[g], column_start[g + 1]):
            first[c], end[c] = gaussian_column_tile_rows(params, ellipse, box, g, box[g, 0] + c - column_start[g])
            n_entries[g] += end[c] - first[c]
    return column_start, first, end, n_entries


@numba.njit(parallel=True, cache=True)
def counting_sort(params, box, ellipse, n_tiles_x, n_tiles_y, n_parts):
    """:func:`bin_gaussians` with the tile rows split into ``n_parts`` bands, one per thread.

    Each band counts, then fills, the lists of its own tiles: every thread
    walks the Gaussians whose box meets its band, in index order, and keeps
    the part of each column's tile rows inside the band, so a tile's list is
    in index order and the threads write disjoint, contiguous stretches of
    the arrays. The result does not depend on ``n_parts``.
    """
    n = box.shape[0]
    n_tiles = n_tiles_x * n_tiles_y
    column_start, first, end, n_entries = tile_rows_of_columns(params, box, ellipse)
    gaussian_start = np.zeros(n + 1, np.int64)
    for g in range(n):
        gaussian_start[g + 1] = gaussian_start[g] + n_entries[g]
    bands = np.empty(n_parts + 1, np.int64)
    for p in range(n_parts + 1):
        bands[p] = n_tiles_y * p // n_parts

    tile_start = np.zeros(n_tiles + 1, np.int64)
    for p in numba.prange(n_parts):
        _count_band(box, column_start, first, end, n_tiles_x, bands[p], bands[p + 1], tile_start)
    for t in range(n_tiles):
        tile_start[t + 1] += tile_start[t]

    entry_gaussian = np.empty(tile_start[n_tiles], np.int32)
    entry_slot = np.empty(tile_start[n_tiles], np.int32)
    cursor = tile_start[:-1].copy()
    for p in numba.prange(n_parts):
        _fill_band(box, column_start, first, end, gaussian_start, n_tiles_x, bands[p], bands[p + 1],
                   cursor, entry_gaussian, entry_slot)
    return tile_start, entry_gaussian, entry_slot, gaussian_start


@numba.njit(cache=True)
def _count_band(box, column_start, first, end, n_tiles_x, band_lo, band_hi, tile_start):
    """Add the entries of tile rows ``[band_lo, band_hi)`` to ``tile_start[t + 1]`` of their tile ``t``."""
    for g in range(box.shape[0]):
        if box[g, 3] <= band_lo or box[g, 2] >= band_hi:
            continue
        for c in range(column_start[g], column_start[g + 1]):
            tx = box[g, 0] + c - column_start[g]
            for ty in range(max(first[c], band_lo), min(end[c], band_hi)):
                tile_start[ty * n_tiles_x + tx + 1] += 1


@numba.njit(cache=True)
def _fill_band(box, column_start, first, end, gaussian_start, n_tiles_x, band_lo, band_hi,
               cursor, entry_gaussian, entry_slot):
    """Write the entries of tile rows ``[band_lo, band_hi)`` at their tiles' ``cursor``, in Gaussian order."""
    for g in range(box.shape[0]):
        if box[g, 3] <= band_lo or box[g, 2] >= band_hi:
            continue
        slot = gaussian_start[g]
        for c in range(column_start[g], column_start[g + 1]):
            tx = box[g, 0] + c - column_start[g]
            for ty in range(max(first[c], band_lo), min(end[c], band_hi)):
                t = ty * n_tiles_x + tx
                e = cursor[t]
                cursor[t] = e + 1
                entry_gaussian[e] = g
                entry_slot[e] = slot + ty - first[c]
            slot += end[c] - first[c]
