"""CUDA tile binning (docs/algorithm.md §2): the same per-tile lists as the CPU's :func:`~.binning.bin_gaussians`.

Exclusive scans of the per-Gaussian and per-tile counts
(:func:`~.cuda_device.exclusive_scan`), an atomic scatter of each Gaussian
into the lists of the tiles its ellipse reaches (:func:`scatter_entries`),
then each list sorted by Gaussian index (:func:`sort_lists`), so the lists
equal the CPU backend's whatever order the atomics ran in.
"""

from typing import NamedTuple

from numba import cuda

from .cuda_device import LINEAR, blocks_for
from .cuda_project import gaussian_column_tile_rows


@cuda.jit
def _count_tiles_kernel(params, ellipse, box, n_tiles_x, tile_count):
    """``tile_count[t]`` += 1 for every tile ``t`` of Gaussian ``g``'s box its ellipse reaches (one thread each)."""
    g = cuda.grid(1)
    if g >= box.shape[0]:
        return
    for tx in range(box[g, 0], box[g, 1]):
        first, end = gaussian_column_tile_rows(params, ellipse, box, g, tx)
        for ty in range(first, end):
            cuda.atomic.add(tile_count, ty * n_tiles_x + tx, 1)


@cuda.jit
def _scatter_kernel(params, ellipse, box, n_tiles_x, gaussian_start, tile_start, cursor, entry_gaussian,
                    entry_slot):
    """Gaussian ``g`` appends itself to the lists of the tiles it reaches (order fixed afterwards).

    Its slots in the Gaussian-sorted partials array are ``gaussian_start[g]``
    onwards, column by column and top to bottom, as on the CPU.
    """
    g = cuda.grid(1)
    if g >= box.shape[0]:
        return
    slot = gaussian_start[g]
    for tx in range(box[g, 0], box[g, 1]):
        first, end = gaussian_column_tile_rows(params, ellipse, box, g, tx)
        for ty in range(first, end):
            t = ty * n_tiles_x + tx
            e = tile_start[t] + cuda.atomic.add(cursor, t, 1)
            entry_gaussian[e] = g
            entry_slot[e] = slot
            slot += 1


@cuda.jit
def _sort_lists_kernel(tile_start, entry_gaussian, entry_slot):
    """Insertion-sort tile ``t``'s entries by Gaussian index (one thread per tile)."""
    t = cuda.grid(1)
    if t >= tile_start.shape[0] - 1:
        return
    first = tile_start[t]
    for i in range(first + 1, tile_start[t + 1]):
        g, s = entry_gaussian[i], entry_slot[i]
        j = i - 1
        while j >= first and entry_gaussian[j] > g:
            entry_gaussian[j + 1] = entry_gaussian[j]
            entry_slot[j + 1] = entry_slot[j]
            j -= 1
        entry_gaussian[j + 1] = g
        entry_slot[j + 1] = s


class DeviceTiles(NamedTuple):
    """The tile lists on the device: the arrays of :class:`~.binning.TileLists` but ``entry_rows``.

    The kernels find an entry's rows from its Gaussian's ellipse
    (:func:`~.maths.gaussian_tile_run`). ``n_entries`` is the lists' length,
    known on the host.
    """

    tile_start: object
    entry_gaussian: object
    entry_slot: object
    gaussian_start: object
    n_entries: int


def count_tiles(params, projection, n_tiles_x, tile_count):
    """Add to the device array ``tile_count`` each tile's number of Gaussians (``tile_count`` starts at 0)."""
    _, ellipse, box = projection
    if box.shape[0]:
        _count_tiles_kernel[blocks_for(box.shape[0]), LINEAR](params, ellipse, box, n_tiles_x, tile_count)


def scatter_entries(params, projection, n_tiles_x, gaussian_start, tile_start, cursor, entry_gaussian, entry_slot):
    """Append every Gaussian to its tiles' lists (``cursor`` starts at 0); :func:`sort_lists` fixes their order."""
    _, ellipse, box = projection
    _scatter_kernel[blocks_for(box.shape[0]), LINEAR](params, ellipse, box, n_tiles_x, gaussian_start, tile_start,
                                                       cursor, entry_gaussian, entry_slot)


def sort_lists(tile_start, entry_gaussian, entry_slot):
    """Sort each tile's list by Gaussian index, as on the CPU."""
    n_tiles = tile_start.shape[0] - 1
    _sort_lists_kernel[blocks_for(n_tiles), LINEAR](tile_start, entry_gaussian, entry_slot)
