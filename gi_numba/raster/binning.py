"""Tile intersection: which Gaussians each kernel tile must visit (docs/algorithm.md §2).

A Gaussian is drawn only in the 16x16 tiles of its 3-sigma box, and there
only where its ellipse ``alpha >= 1/255`` reaches: the box is a square
around an ellipse that is often long and thin, and most of its tiles would
hold no term. For each tile column of the box,
:func:`~gi_numba.raster.maths.gaussian_band_rows` gives the pixel rows the
ellipse reaches over that column, cut to the box's rows; the kernel tiles
(16 columns by :data:`~gi_numba.raster.maths.TILE_ROWS` rows) that hold
them are the Gaussian's tiles in that column. Then a counting sort by tile
id; within a tile, Gaussians keep their index order, so every run produces
the same lists. Each entry also keeps its rows inside its tile, so the
kernels need not work them out again.

Each (tile, Gaussian) pair is an *entry*. Besides the tile-sorted entry list,
every entry also gets a *slot* in a Gaussian-sorted array (a Gaussian's
entries column by column, top to bottom): the rasteriser writes an entry's
gradient partials to its slot, and the reduction then sums each Gaussian's
contiguous slots (no atomics, same bits on any thread count).
"""

from typing import NamedTuple

import numba
import numpy as np

from ..errors import GIError
from .maths import TILE_ROWS, band_tile_rows, gaussian_band_rows, kernel_grid_rows, rows_in_tile

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


class TileLists(NamedTuple):
    """The tile lists of one set of Gaussians, the kernels' whole input besides the Gaussians.

    ``tile_start`` ``(T + 1,)`` int64: entries of kernel tile ``t`` (``n_tiles_x``
    per row, row-major, ``t = ty * n_tiles_x + tx``, ``T = n_tiles_x *
    kernel_grid_rows(n_tiles_y)``; :func:`~gi_numba.raster.maths.kernel_grid_rows`)
    are ``tile_start[t]:tile_start[t + 1]``. ``entry_gaussian`` ``(E,)`` int32:
    the Gaussian of each entry. ``entry_slot`` ``(E,)`` int32: its slot in the
    Gaussian-sorted partials array. ``entry_rows`` ``(E, 2)`` int8: rows
    ``[r0, r1)`` of its tile the entry's ellipse reaches
    (:func:`~gi_numba.raster.maths.rows_in_tile`; never empty).
    ``gaussian_start`` ``(N + 1,)`` int64: slots of Gaussian ``g`` are
    ``gaussian_start[g]:gaussian_start[g + 1]``.

    The CUDA backend's :class:`~.cuda_binning.DeviceTiles` has the same lists
    (but ``entry_rows``, which its kernels derive from the ellipse).
    """

    tile_start: np.ndarray
    entry_gaussian: np.ndarray
    entry_slot: np.ndarray
    entry_rows: np.ndarray
    gaussian_start: np.ndarray


def check_entry_budget(entries, n_gaussians):
    """Raise :class:`GIError` when ``entries`` tile-list entries exceed :data:`MAX_ENTRIES`."""
    if entries > MAX_ENTRIES:
        raise GIError(f"the Gaussians cover {entries} (tile, Gaussian) pairs, more than the {MAX_ENTRIES} "
                      f"the tile lists may hold ({entries / max(n_gaussians, 1):.0f} tiles per Gaussian): "
                      "the covariances have grown far beyond the image scale")


def bin_gaussians(params, box, ellipse, n_tiles_x, n_tiles_y):
    """Tile lists of the projected Gaussians (tutorial: step 2 of docs/tutorial.md).

    A counting sort by tile, one range of Gaussians per thread
    (:func:`counting_sort`); the lists are the same whatever the thread count.
    Each range keeps a count per tile, so there are no more ranges than box
    tiles per tile: the counts never take more room than the boxes' tiles.
    Raises :class:`GIError` when the boxes hold more than :data:`MAX_ENTRIES` tiles.

    Parameters
    ----------
    params : (N, 8) float32
        The Gaussians (their means are used).
    box, ellipse
        Tile boxes ``(tx0, tx1, ty0, ty1)`` and ellipse extents from
        :func:`~gi_numba.raster.project.project_gaussians`.
    n_tiles_x, n_tiles_y
        The 16x16 tile grid of the projection
        (:func:`~gi_numba.raster.project.tile_grid`).

    Returns
    -------
    TileLists
    """
    box_tiles = count_entries(box)
    check_entry_budget(box_tiles, box.shape[0])
    n_parts = min(numba.get_num_threads(), 1 + box_tiles // (n_tiles_x * n_tiles_y))
    return TileLists(*counting_sort(params, box, ellipse, n_tiles_x, n_tiles_y, n_parts))


@numba.njit(parallel=True, cache=True)
def counting_sort(params, box, ellipse, n_tiles_x, n_tiles_y, n_parts):
    """:func:`bin_gaussians` with the Gaussians split into ``n_parts`` index ranges, one per thread.

    The ranges hold about equal work (:func:`balanced_parts`). Each part
    finds the tile rows of its Gaussians' columns and counts its entries per
    tile (:func:`_rows_and_counts`). A tile's list then holds part 0's
    entries, then part 1's, and so on, so each part fills its own stretch of
    every list (:func:`_fill_part`) in index order: the lists do not depend
    on ``n_parts``.
    """
    n = box.shape[0]
    n_tiles = n_tiles_x * kernel_grid_rows(n_tiles_y)
    column_start = np.zeros(n + 1, np.int64)
    for g in range(n):
        column_start[g + 1] = column_start[g] + box[g, 1] - box[g, 0]
    parts = balanced_parts(box, column_start, n_parts)

    rows = np.empty((column_start[n], 2), np.int64)
    n_entries = np.zeros(n, np.int64)
    counts = np.zeros((n_parts, n_tiles), np.int64)
    for p in numba.prange(n_parts):
        _rows_and_counts(params, box, ellipse, column_start, parts[p], parts[p + 1], n_tiles_x,
                         rows, n_entries, counts[p])

    tile_start = np.zeros(n_tiles + 1, np.int64)
    cursor = np.empty((n_parts, n_tiles), np.int64)
    for t in range(n_tiles):
        position = tile_start[t]
        for p in range(n_parts):
            cursor[p, t] = position
            position += counts[p, t]
        tile_start[t + 1] = position
    gaussian_start = np.zeros(n + 1, np.int64)
    for g in range(n):
        gaussian_start[g + 1] = gaussian_start[g] + n_entries[g]

    entry_gaussian = np.empty(tile_start[n_tiles], np.int32)
    entry_slot = np.empty(tile_start[n_tiles], np.int32)
    entry_rows = np.empty((tile_start[n_tiles], 2), np.int8)
    for p in numba.prange(n_parts):
        _fill_part(box, column_start, rows, gaussian_start, parts[p], parts[p + 1], n_tiles_x,
                   cursor[p], entry_gaussian, entry_slot, entry_rows)
    return tile_start, entry_gaussian, entry_slot, entry_rows, gaussian_start


@numba.njit(cache=True)
def balanced_parts(box, column_start, n_parts):
    """Split the Gaussians into ``n_parts`` index ranges of about equal binning work.

    A Gaussian's work is its box columns (rows to find) plus its box tiles (at
    most that many entries to count and write). Gaussians grown late in a fit
    are smaller than the first ones, so equal index ranges would not balance.
    Returns the ``n_parts + 1`` range bounds.
    """
    n = box.shape[0]
    work = np.empty(n + 1, np.int64)
    work[0] = 0
    for g in range(n):
        work[g + 1] = work[g] + column_start[g + 1] - column_start[g] + \
            (box[g, 1] - box[g, 0]) * (box[g, 3] - box[g, 2])
    parts = np.empty(n_parts + 1, np.int64)
    for p in range(n_parts + 1):
        parts[p] = np.searchsorted(work, work[n] * p // n_parts)
    parts[n_parts] = n
    return parts


@numba.njit(cache=True)
def _rows_and_counts(params, box, ellipse, column_start, g0, g1, n_tiles_x, rows, n_entries, counts):
    """Pixel rows of every box column of Gaussians ``g0:g1``, their entry counts, per-tile counts.

    Column ``c`` of Gaussian ``g`` (``c`` from ``column_start[g]``) is tile
    column ``box[g, 0] + c - column_start[g]``; ``rows[c]`` are the first and
    last pixel row the ellipse reaches over it inside the box
    (:func:`~.maths.gaussian_band_rows`). The kernel tile rows that hold them
    (:func:`~.maths.band_tile_rows`) are the column's entries.
    """
    for g in range(g0, g1):
        for c in range(column_start[g], column_start[g + 1]):
            tx = box[g, 0] + c - column_start[g]
            rows[c, 0], rows[c, 1] = gaussian_band_rows(params, ellipse, box, g, tx)
            first, end = band_tile_rows(rows[c, 0], rows[c, 1])
            n_entries[g] += end - first
            for ty in range(first, end):
                counts[ty * n_tiles_x + tx] += 1


@numba.njit(cache=True)
def _fill_part(box, column_start, rows, gaussian_start, g0, g1, n_tiles_x, cursor,
               entry_gaussian, entry_slot, entry_rows):
    """Write the entries of Gaussians ``g0:g1`` at their tiles' ``cursor``, in index order."""
    for g in range(g0, g1):
        slot = gaussian_start[g]
        for c in range(column_start[g], column_start[g + 1]):
            tx = box[g, 0] + c - column_start[g]
            first, end = band_tile_rows(rows[c, 0], rows[c, 1])
            for ty in range(first, end):
                t = ty * n_tiles_x + tx
                e = cursor[t]
                cursor[t] = e + 1
                entry_gaussian[e] = g
                entry_slot[e] = slot
                entry_rows[e, 0], entry_rows[e, 1] = rows_in_tile(rows[c, 0], rows[c, 1], ty * TILE_ROWS)
                slot += 1
