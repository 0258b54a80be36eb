"""CPU rasteriser: forward and fused forward+loss+backward tile kernels (docs/algorithm.md §2-§3).

Work is Gaussian-major inside each kernel tile of 16 columns by
:data:`~gi_numba.raster.maths.TILE_ROWS` (32) rows. Binning lists a Gaussian
only in the tiles its ellipse ``alpha >= 1/255`` reaches inside its box,
with the rows of the tile it reaches (:func:`~gi_numba.raster.maths.rows_in_tile`). The
splat walks those rows; along a row the exponent is a quadratic in the
column offset (:func:`~gi_numba.raster.maths.sigma_in_row`), so one row of 16
pixels is one 16-wide vector of plain float32 arithmetic, including the
polynomial :func:`~gi_numba.raster.maths.exp_sixteenfold`. The conic is
pre-scaled by ``-1/16`` so the exponent comes out as ``u = -sigma/16``, the
polynomial's own argument; docs/algorithm.md §2's tests (``sigma >= 0``,
``sigma <= ln 255``) inside the loop decide which terms count.

The tile's colour sums live in one flat buffer (red, green, blue planes of
512 values) indexed with unsigned offsets: no wrap-around checks and no
aliasing between the planes, so LLVM emits the row as straight vector code.

The fused kernel keeps each tile's alphas in a per-chunk scratch, computes the
clamp and the MSE gradient in place, then walks the same rows again for the
backward pass. Each (tile, Gaussian) entry writes its 8 gradient partials to
its own slot; :func:`reduce_gradients` sums them per Gaussian. Nothing is
shared between threads, so the result has the same bits on any thread count.

Images are channel-planar ``(3, H, W)`` float32.
"""

from typing import NamedTuple

import numba
import numpy as np

from .maths import (TILE, TILE_ROWS, U_CUTOFF, clamped_error, exp_sixteenfold, gaussian_gradient, pixel_gradient_terms,
                    row_terms, sigma_in_row, store_partials)

_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
#: The splat sums without reassociation: with it, LLVM summed in one order where it compiled the splat into its
#: caller afresh and in another where the caller was compiled against a splat loaded from Numba's cache, so the
#: first run of an encode and later ones wrote other bytes (same speed, benchmarks/bench_raster.py).
_SPLAT_FASTMATH = _FASTMATH - {"reassoc"}
_TILE_PIXELS = TILE * TILE_ROWS
_GREEN, _BLUE = np.uint64(_TILE_PIXELS), np.uint64(2 * _TILE_PIXELS)
_U_CUTOFF = np.float32(U_CUTOFF)
_TO_U = np.float32(-1.0 / 16.0)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)


#: Bytes of one cache line. The kernels' buffers start on one, so each
#: 16-value row of a tile is one aligned 64-byte vector.
CACHE_LINE = 64


def aligned_zeros(shape, dtype=np.float32):
    """Zeros whose first element starts a cache line (:data:`CACHE_LINE`).

    numpy only promises 16-byte alignment. A 16-wide float32 row that
    straddles two cache lines makes every vector load and store of it a split
    access: with every buffer 16 bytes off a line, a training pass on a
    fitted 5 000-Gaussian model took 0-4% longer (median 2%).
    """
    dtype = np.dtype(dtype)
    n_bytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(n_bytes + CACHE_LINE, np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    return raw[start:start + n_bytes].view(dtype).reshape(shape)


def _tile_coordinates():
    """Column and row (float32) of each of a tile's 512 pixels, row-major, as ``(2, 512)``."""
    k = np.arange(_TILE_PIXELS)
    coords = aligned_zeros((2, _TILE_PIXELS))
    coords[0], coords[1] = k % TILE, k // TILE
    return coords


@numba.njit(cache=True)
def count_run_pixels(entry_rows):
    """Number of Gaussian-pixel evaluations one pass makes (for benchmarks)."""
    total = 0
    for e in range(entry_rows.shape[0]):
        total += (entry_rows[e, 1] - entry_rows[e, 0]) * TILE
    return total


@numba.njit(cache=True, fastmath=_SPLAT_FASTMATH)
def _splat_tile(params, conic, entry_gaussian, entry_rows, first, last, x0, y0, acc, alpha):
    """Accumulate ``sum_g col_g * alpha_g(p)`` over one tile's entries into ``acc`` (r, g, b planes of 512).

    Entry ``e`` covers rows ``entry_rows[e, 0]:entry_rows[e, 1]``; when
    ``alpha`` is an array the entries' alphas are kept in it one after
    another, 16 per row (a forward-only pass passes ``None`` and the store is
    compiled away).
    """
    acc[:] = _ZERO
    offset = 0
    for e in range(first, last):
        g = entry_gaussian[e]
        u_A, u_B, u_C = _TO_U * _HALF * conic[g, 0], _TO_U * conic[g, 1], _TO_U * _HALF * conic[g, 2]
        cr, cg, cb = params[g, 5], params[g, 6], params[g, 7]
        dx0 = params[g, 0] - np.float32(x0)
        dy0 = params[g, 1] - np.float32(y0)
        r0, r1 = np.int64(entry_rows[e, 0]), np.int64(entry_rows[e, 1])
        for r in range(r0, r1):
            b_dy, c_dy2 = row_terms(u_B, u_C, dy0 - np.float32(r))
            row = np.uint64(r * TILE)
            kept = np.uint64(offset + (r - r0) * TILE)
            for q in range(TILE):
                u = sigma_in_row(u_A, b_dy, c_dy2, dx0 - np.float32(q))
                a = exp_sixteenfold(u) if (u >= _U_CUTOFF and u <= _ZERO) else _ZERO
                if alpha is not None:
                    alpha[kept + np.uint64(q)] = a
                i = row + np.uint64(q)
                acc[i] += cr * a
                acc[i + _GREEN] += cg * a
                acc[i + _BLUE] += cb * a
        offset += (r1 - r0) * TILE


class TileScratch(NamedTuple):
    """Per-chunk work buffers of the tile kernels, allocated once and reused.

    Tiles are dealt round-robin to the chunks (balancing busy and empty tiles);
    each chunk owns one slice of every buffer, so threads never share memory.
    """

    acc: np.ndarray       # (chunks, 1536) colour sums of the tile: r, g, b planes of 512
    grad_out: np.ndarray  # (chunks, 1536) dL/d(out) of the tile, same layout
    alpha: np.ndarray     # (chunks, longest * 512) alphas of every entry of the tile
    coords: np.ndarray    # (2, 512) column and row of each pixel of a tile

    @classmethod
    def allocate(cls, longest, n_chunks=None):
        """Buffers for tiles of at most ``longest`` entries, each starting a cache line."""
        n_chunks = n_chunks or 8 * numba.get_num_threads()
        longest = max(int(longest), 1)
        return cls(aligned_zeros((n_chunks, 3 * _TILE_PIXELS)),
                   aligned_zeros((n_chunks, 3 * _TILE_PIXELS)),
                   aligned_zeros((n_chunks, longest * _TILE_PIXELS)),
                   _tile_coordinates())

    def fits(self, longest):
        """Whether these buffers hold tiles of ``longest`` entries."""
        return self.alpha.shape[1] >= longest * _TILE_PIXELS


@numba.njit(cache=True)
def longest_list(tile_start):
    """Largest number of entries in one tile."""
    longest = 0
    for t in range(tile_start.size - 1):
        longest = max(longest, tile_start[t + 1] - tile_start[t])
    return longest


@numba.njit(cache=True, fastmath=_FASTMATH)
def _write_tile(acc, x0, y0, height, width, image):
    """Copy the tile's clamped sums into the ``(3, H, W)`` image.

    ``image`` may be the transposed view of a channel-last ``(H, W, 3)``
    array: then each pixel's three values are written one after another.
    """
    rows, cols = min(TILE_ROWS, height - y0), min(TILE, width - x0)
    if image.strides[0] < image.strides[2]:
        for r in range(rows):
            y = np.uint64(y0 + r)
            for q in range(cols):
                x = np.uint64(x0 + q)
                for ch in range(3):
                    value = acc[np.uint64(ch * _TILE_PIXELS + r * TILE + q)]
                    image[ch, y, x] = min(max(value, _ZERO), _ONE)
        return
    for ch in range(3):
        for r in range(rows):
            y = np.uint64(y0 + r)
            for q in range(cols):
                value = acc[np.uint64(ch * _TILE_PIXELS + r * TILE + q)]
                image[ch, y, np.uint64(x0 + q)] = min(max(value, _ZERO), _ONE)


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def render_forward(params, conic, tiles, n_tiles_x, scratch, image):
    """Render the clamped image ``(3, H, W)`` into ``image`` (docs/algorithm.md §2; tutorial step 2).

    ``tiles`` are the :class:`~.binning.TileLists` of the Gaussians; ``scratch``
    is a :class:`TileScratch`, whose chunk count sets the parallelism.
    """
    height, width = image.shape[1], image.shape[2]
    tile_start, entry_gaussian, entry_rows = tiles.tile_start, tiles.entry_gaussian, tiles.entry_rows
    n_tiles = tile_start.size - 1
    n_chunks = scratch.alpha.shape[0]
    for chunk in numba.prange(n_chunks):
        acc = scratch.acc[chunk]
        for t in range(chunk, n_tiles, n_chunks):
            x0 = (t % n_tiles_x) * TILE
            y0 = (t // n_tiles_x) * TILE_ROWS
            first, last = tile_start[t], tile_start[t + 1]
            _splat_tile(params, conic, entry_gaussian, entry_rows, first, last, x0, y0, acc, None)
            _write_tile(acc, x0, y0, height, width, image)


@numba.njit(cache=True)
def image_to_tiles(image):
    """Rearrange a ``(3, H, W)`` image as ``(kernel tiles, 1536)``, one contiguous block per tile.

    Each block holds the tile's red, green and blue planes of 512 pixels, the
    layout of the fused kernel's buffers: each tile is one sequential 6 KiB
    read instead of 96 strided rows. Pixels beyond the image are 0.
    """
    height, width = image.shape[1], image.shape[2]
    n_tiles_x, n_tiles_y = (width + TILE - 1) // TILE, (height + TILE_ROWS - 1) // TILE_ROWS
    tiles = np.zeros((n_tiles_x * n_tiles_y, 3 * _TILE_PIXELS), np.float32)
    for t in range(tiles.shape[0]):
        x0, y0 = (t % n_tiles_x) * TILE, (t // n_tiles_x) * TILE_ROWS
        for ch in range(3):
            for r in range(min(TILE_ROWS, height - y0)):
                for q in range(min(TILE, width - x0)):
                    tiles[t, ch * _TILE_PIXELS + r * TILE + q] = image[ch, y0 + r, x0 + q]
    return tiles


@numba.njit(cache=True, fastmath=_FASTMATH)
def _loss_gradient_tile(acc, target, rows, cols, scale, grad_out):
    """Fill ``grad_out = dL/d(out)`` for one tile and return its squared error (float64).

    ``L = mean((clamp(out) - target)^2)``, pixel by pixel :func:`~.maths.clamped_error`
    (docs/algorithm.md §3). Only the tile's first ``rows x cols`` pixels lie in the
    image; the others get zero. A whole tile is one flat vector loop over its
    1536 values.
    """
    sse = 0.0
    if rows == TILE_ROWS and cols == TILE:
        for k in range(3 * _TILE_PIXELS):
            p = np.uint64(k)
            err, grad_out[p] = clamped_error(acc[p], target[p], scale)
            sse += np.float64(err)
        return sse
    grad_out[:] = _ZERO
    for ch in range(3):
        for r in range(rows):
            for q in range(cols):
                p = np.uint64(ch * _TILE_PIXELS + r * TILE + q)
                err, grad_out[p] = clamped_error(acc[p], target[p], scale)
                sse += np.float64(err)
    return sse


@numba.njit(cache=True, fastmath=_FASTMATH)
def _backward_tile(params, conic, entry_gaussian, entry_slot, entry_rows, first, last, x0, y0, cols, rows,
                   grad_out, alpha, partials):
    """Per-entry gradient partials ``(mx, my, A, B, C, r, g, b)`` of one tile (docs/algorithm.md §3).

    Each entry sums :func:`~.maths.pixel_gradient_terms` over its pixels, then
    applies its conic once (:func:`~.maths.store_partials`). An entry's rows
    are one contiguous run of pixels, walked as one flat loop (vector
    accumulators, one reduction).
    """
    offset = 0
    for e in range(first, last):
        g = entry_gaussian[e]
        cr, cg, cb = params[g, 5], params[g, 6], params[g, 7]
        dx0 = params[g, 0] - np.float32(x0)
        dy0 = params[g, 1] - np.float32(y0)
        sx = sy = sxx = sxy = syy = gr = gg = gb = _ZERO
        k0 = np.int64(entry_rows[e, 0]) * TILE
        n_pixels = np.int64(entry_rows[e, 1]) * TILE - k0
        for k in range(n_pixels):
            i = np.uint64(k0 + k)
            tx, ty, txx, txy, tyy, tr, tg, tb = pixel_gradient_terms(
                alpha[np.uint64(offset + k)], grad_out[i], grad_out[i + _GREEN], grad_out[i + _BLUE],
                cr, cg, cb, dx0 - cols[i], dy0 - rows[i])
            sx += tx
            sy += ty
            sxx += txx
            sxy += txy
            syy += tyy
            gr += tr
            gg += tg
            gb += tb
        store_partials(partials, entry_slot[e], conic[g, 0], conic[g, 1], conic[g, 2], sx, sy, sxx, sxy, syy,
                       gr, gg, gb)
        offset += n_pixels


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def render_loss_backward(params, conic, tiles, target_tiles, height, width, n_tiles_x, scratch, partials):
    """Fused forward, MSE loss and backward over all tiles (docs/algorithm.md §2-§3; tutorial step 3).

    ``tiles`` are the :class:`~.binning.TileLists` of the Gaussians and
    ``target_tiles`` the target image from :func:`image_to_tiles`. Writes
    per-entry gradient partials to ``partials`` (``(E, 8)``, indexed by slot)
    and returns the sum of squared errors of the clamped render.
    ``scratch`` is a :class:`TileScratch` sized for the longest tile list.
    """
    scale = np.float32(2.0 / (3.0 * height * width))
    tile_start, entry_gaussian, entry_slot, entry_rows = \
        tiles.tile_start, tiles.entry_gaussian, tiles.entry_slot, tiles.entry_rows
    n_tiles = tile_start.size - 1
    n_chunks = scratch.alpha.shape[0]
    chunk_sse = np.zeros(n_chunks)
    cols, rows = scratch.coords[0], scratch.coords[1]
    for chunk in numba.prange(n_chunks):
        acc = scratch.acc[chunk]
        grad_out = scratch.grad_out[chunk]
        alpha = scratch.alpha[chunk]
        sse = 0.0
        for t in range(chunk, n_tiles, n_chunks):
            x0 = (t % n_tiles_x) * TILE
            y0 = (t // n_tiles_x) * TILE_ROWS
            first, last = tile_start[t], tile_start[t + 1]
            _splat_tile(params, conic, entry_gaussian, entry_rows, first, last, x0, y0, acc, alpha)
            sse += _loss_gradient_tile(acc, target_tiles[t], min(TILE_ROWS, height - y0), min(TILE, width - x0),
                                       scale, grad_out)
            _backward_tile(params, conic, entry_gaussian, entry_slot, entry_rows, first, last, x0, y0, cols, rows,
                           grad_out, alpha, partials)
        chunk_sse[chunk] = sse
    return chunk_sse.sum()


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def reduce_gradients(partials, gaussian_start, conic, grads):
    """Sum each Gaussian's partials into its ``(N, 8)`` gradient row (:func:`~.maths.gaussian_gradient`)."""
    for g in numba.prange(grads.shape[0]):
        gaussian_gradient(partials, gaussian_start[g], gaussian_start[g + 1], conic, g, grads)
