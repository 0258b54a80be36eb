"""CPU rasteriser: forward and fused forward+loss+backward tile kernels (ALGORITHM.md §2-§3).

Work is Gaussian-major inside each 16x16 tile: a tile visits its Gaussians in
list order and, for each, evaluates only the rows of the tile its ellipse
``alpha >= 1/255`` reaches (:func:`~gi_numba.raster.maths.row_range`). Those
rows are one contiguous run of the row-major tile, so the pixel loop is one
flat loop of plain float32 arithmetic (including the polynomial
:func:`~gi_numba.raster.maths.fast_exp`) that LLVM turns into 16-wide vector
code; the exact ``sigma <= ln 255`` test inside the loop decides which terms
count.

The fused kernel keeps each tile's alphas in a per-chunk scratch, computes the
clamp and the MSE gradient in place, then walks the same runs again for the
backward pass. Each (tile, Gaussian) entry writes its 8 gradient partials to
its own slot; :func:`reduce_gradients` sums them per Gaussian. Nothing is
shared between threads, so the result has the same bits on any thread count.

Images are channel-planar ``(3, H, W)`` float32.
"""

from typing import NamedTuple

import numba
import numpy as np

from .maths import SIGMA_CUTOFF, TILE, covariance_grad_from_conic_grad, fast_exp, sigma_of, tile_run

_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_TILE_PIXELS = TILE * TILE
_CUTOFF = np.float32(SIGMA_CUTOFF)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)


@numba.njit(cache=True)
def _tile_coordinates():
    """Column and row (float32) of each of a tile's 256 pixels, row-major."""
    k = np.arange(_TILE_PIXELS)
    return (k % TILE).astype(np.float32), (k // TILE).astype(np.float32)


@numba.njit(cache=True, inline="always")
def _run_of(params, ellipse, g, x0, y0):
    """:func:`~gi_numba.raster.maths.tile_run` of Gaussian ``g`` in the tile at ``(x0, y0)``, in float64."""
    return tile_run(np.float64(params[g, 0]), np.float64(params[g, 1]), np.float64(ellipse[g, 0]),
                    np.float64(ellipse[g, 1]), np.float64(ellipse[g, 2]), np.float64(ellipse[g, 3]), x0, y0)


@numba.njit(cache=True)
def count_run_pixels(params, ellipse, tile_start, entry_gaussian, n_tiles_x):
    """Number of Gaussian-pixel evaluations one pass makes (for benchmarks)."""
    total = 0
    for t in range(tile_start.size - 1):
        x0, y0 = (t % n_tiles_x) * TILE, (t // n_tiles_x) * TILE
        for e in range(tile_start[t], tile_start[t + 1]):
            total += _run_of(params, ellipse, entry_gaussian[e], x0, y0)[1]
    return total


@numba.njit(cache=True, fastmath=_FASTMATH)
def _splat_tile(params, conic, ellipse, entry_gaussian, first, last, x0, y0,
                cols, rows, acc, alpha, span, keep_alpha):
    """Accumulate ``sum_g col_g * alpha_g(p)`` over one tile's entries into ``acc``.

    The run of entry ``j`` is recorded as ``span[j] = (first pixel, count, offset)``.
    When ``keep_alpha`` its alphas are kept at ``alpha[offset:offset + count]``;
    otherwise ``alpha`` is a 256-value buffer that each run overwrites.
    """
    acc[:, :] = _ZERO
    offset = 0
    for j in range(last - first):
        g = entry_gaussian[first + j]
        half_A, B, half_C = _HALF * conic[g, 0], conic[g, 1], _HALF * conic[g, 2]
        cr, cg, cb = params[g, 5], params[g, 6], params[g, 7]
        dx0 = params[g, 0] - np.float32(x0)
        dy0 = params[g, 1] - np.float32(y0)
        k0, count = _run_of(params, ellipse, g, x0, y0)
        span[j, 0], span[j, 1], span[j, 2] = k0, count, offset
        for k in range(count):
            i = np.uint64(k0 + k)
            dx = dx0 - cols[i]
            dy = dy0 - rows[i]
            s = sigma_of(half_A, B, half_C, dx, dy)
            a = fast_exp(-s)
            a = a if (s >= _ZERO and s <= _CUTOFF) else _ZERO
            alpha[np.uint64(offset + k)] = a
            acc[0, i] += cr * a
            acc[1, i] += cg * a
            acc[2, i] += cb * a
        if keep_alpha:
            offset += count


class TileScratch(NamedTuple):
    """Per-chunk work buffers of the tile kernels, allocated once and reused.

    Tiles are dealt round-robin to the chunks (balancing busy and empty tiles);
    each chunk owns one slice of every buffer, so threads never share memory.
    """

    acc: np.ndarray       # (chunks, 3, 256) colour sums of the tile
    grad_out: np.ndarray  # (chunks, 3, 256) dL/d(out) of the tile
    alpha: np.ndarray     # (chunks, longest * 256) alphas of every run of the tile
    span: np.ndarray      # (chunks, longest, 3) runs: first pixel, count, offset

    @classmethod
    def allocate(cls, longest, n_chunks=None):
        """Buffers for tiles of at most ``longest`` entries."""
        n_chunks = n_chunks or 8 * numba.get_num_threads()
        longest = max(int(longest), 1)
        return cls(np.zeros((n_chunks, 3, _TILE_PIXELS), np.float32),
                   np.zeros((n_chunks, 3, _TILE_PIXELS), np.float32),
                   np.zeros((n_chunks, longest * _TILE_PIXELS), np.float32),
                   np.zeros((n_chunks, longest, 3), np.int64))

    def fits(self, longest):
        """Whether these buffers hold tiles of ``longest`` entries."""
        return self.span.shape[1] >= longest


@numba.njit(cache=True)
def longest_list(tile_start):
    """Largest number of entries in one tile."""
    longest = 0
    for t in range(tile_start.size - 1):
        longest = max(longest, tile_start[t + 1] - tile_start[t])
    return longest


@numba.njit(cache=True, fastmath=_FASTMATH)
def _write_tile(acc, x0, y0, height, width, image):
    """Copy the tile's clamped sums into the ``(3, H, W)`` image."""
    for ch in range(3):
        for r in range(min(TILE, height - y0)):
            y = np.uint64(y0 + r)
            for q in range(min(TILE, width - x0)):
                image[ch, y, np.uint64(x0 + q)] = min(max(acc[ch, np.uint64(r * TILE + q)], _ZERO), _ONE)


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def render_forward(params, conic, ellipse, tile_start, entry_gaussian, n_tiles_x, scratch, image):
    """Render the clamped image ``(3, H, W)`` into ``image`` (ALGORITHM.md §2; tutorial step 2).

    ``scratch`` is a :class:`TileScratch`; its chunk count sets the parallelism.
    """
    height, width = image.shape[1], image.shape[2]
    n_tiles = tile_start.size - 1
    n_chunks = scratch.alpha.shape[0]
    for chunk in numba.prange(n_chunks):
        cols, rows = _tile_coordinates()
        acc = scratch.acc[chunk]
        alpha = scratch.alpha[chunk]
        span = scratch.span[chunk]
        for t in range(chunk, n_tiles, n_chunks):
            x0 = (t % n_tiles_x) * TILE
            y0 = (t // n_tiles_x) * TILE
            _splat_tile(params, conic, ellipse, entry_gaussian, tile_start[t], tile_start[t + 1],
                        x0, y0, cols, rows, acc, alpha, span, False)
            _write_tile(acc, x0, y0, height, width, image)


@numba.njit(cache=True)
def image_to_tiles(image):
    """Rearrange a ``(3, H, W)`` image as ``(tiles, 3, 256)``, one contiguous block per tile.

    The fused kernel reads the target this way: each tile is one sequential
    3 KiB read instead of 48 strided rows. Pixels beyond the image are 0.
    """
    height, width = image.shape[1], image.shape[2]
    n_tiles_x, n_tiles_y = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    tiles = np.zeros((n_tiles_x * n_tiles_y, 3, _TILE_PIXELS), np.float32)
    for t in range(tiles.shape[0]):
        x0, y0 = (t % n_tiles_x) * TILE, (t // n_tiles_x) * TILE
        for ch in range(3):
            for r in range(min(TILE, height - y0)):
                for q in range(min(TILE, width - x0)):
                    tiles[t, ch, r * TILE + q] = image[ch, y0 + r, x0 + q]
    return tiles


@numba.njit(cache=True, fastmath=_FASTMATH)
def _loss_gradient_tile(acc, target, rows, cols, scale, grad_out):
    """Fill ``grad_out = dL/d(out)`` for one tile and return its squared error (float64).

    ``L = mean((clamp(out) - target)^2)``; the clamp passes gradient only where
    ``0 <= out <= 1`` (ALGORITHM.md §3; inclusive, as PyTorch's ``clamp`` is, or
    an all-zero start with colours 0 could never move). Only the tile's first ``rows x cols``
    pixels lie in the image; the others get zero.
    """
    grad_out[:, :] = _ZERO
    sse = 0.0
    for ch in range(3):
        for r in range(rows):
            row_sse = _ZERO
            for q in range(cols):
                p = np.uint64(r * TILE + q)
                out = acc[ch, p]
                diff = min(max(out, _ZERO), _ONE) - target[ch, p]
                row_sse += diff * diff
                grad_out[ch, p] = scale * diff if (out >= _ZERO and out <= _ONE) else _ZERO
            sse += np.float64(row_sse)
    return sse


@numba.njit(cache=True, fastmath=_FASTMATH)
def _backward_tile(params, conic, entry_gaussian, entry_slot, first, last, x0, y0, cols, rows,
                   grad_out, alpha, span, partials):
    """Per-entry gradient partials ``(mx, my, A, B, C, r, g, b)`` of one tile (ALGORITHM.md §3).

    With ``d = mu - p``: ``dL/dcol = sum alpha grad_out``, ``dL/dsigma = -alpha (col . grad_out)``,
    ``dsigma/dmu = (A dx + B dy, B dx + C dy)``, ``dsigma/d(A, B, C) = (dx^2/2, dx dy, dy^2/2)``.
    The loop only sums ``dL/dsigma`` times ``dx, dy, dx^2, dx dy, dy^2``; the conic
    is applied once afterwards.
    """
    for j in range(last - first):
        e = first + j
        g = entry_gaussian[e]
        cr, cg, cb = params[g, 5], params[g, 6], params[g, 7]
        dx0 = params[g, 0] - np.float32(x0)
        dy0 = params[g, 1] - np.float32(y0)
        sx = sy = sxx = sxy = syy = gr = gg = gb = _ZERO
        k0, count, offset = span[j, 0], span[j, 1], span[j, 2]
        for k in range(count):
            i = np.uint64(k0 + k)
            a = alpha[np.uint64(offset + k)]
            gor, gog, gob = grad_out[0, i], grad_out[1, i], grad_out[2, i]
            gr += a * gor
            gg += a * gog
            gb += a * gob
            ds = -a * (cr * gor + cg * gog + cb * gob)
            dx = dx0 - cols[i]
            dy = dy0 - rows[i]
            dsx = ds * dx
            dsy = ds * dy
            sx += dsx
            sy += dsy
            sxx += dsx * dx
            sxy += dsx * dy
            syy += dsy * dy
        A, B, C = conic[g, 0], conic[g, 1], conic[g, 2]
        slot = entry_slot[e]
        partials[slot, 0] = A * sx + B * sy
        partials[slot, 1] = B * sx + C * sy
        partials[slot, 2] = _HALF * sxx
        partials[slot, 3] = sxy
        partials[slot, 4] = _HALF * syy
        partials[slot, 5] = gr
        partials[slot, 6] = gg
        partials[slot, 7] = gb


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def render_loss_backward(params, conic, ellipse, tile_start, entry_gaussian, entry_slot,
                         target_tiles, height, width, n_tiles_x, scratch, partials):
    """Fused forward, MSE loss and backward over all tiles (ALGORITHM.md §2-§3; tutorial step 3).

    ``target_tiles`` is the target image from :func:`image_to_tiles`. Writes
    per-entry gradient partials to ``partials`` (``(E, 8)``, indexed by slot)
    and returns the sum of squared errors of the clamped render.
    ``scratch`` is a :class:`TileScratch` sized for the longest tile list.
    """
    scale = np.float32(2.0 / (3.0 * height * width))
    n_tiles = tile_start.size - 1
    n_chunks = scratch.alpha.shape[0]
    chunk_sse = np.zeros(n_chunks)
    for chunk in numba.prange(n_chunks):
        cols, rows = _tile_coordinates()
        acc = scratch.acc[chunk]
        grad_out = scratch.grad_out[chunk]
        alpha = scratch.alpha[chunk]
        span = scratch.span[chunk]
        sse = 0.0
        for t in range(chunk, n_tiles, n_chunks):
            x0 = (t % n_tiles_x) * TILE
            y0 = (t // n_tiles_x) * TILE
            first, last = tile_start[t], tile_start[t + 1]
            _splat_tile(params, conic, ellipse, entry_gaussian, first, last, x0, y0,
                        cols, rows, acc, alpha, span, True)
            sse += _loss_gradient_tile(acc, target_tiles[t], min(TILE, height - y0), min(TILE, width - x0),
                                       scale, grad_out)
            _backward_tile(params, conic, entry_gaussian, entry_slot, first, last, x0, y0, cols, rows,
                           grad_out, alpha, span, partials)
        chunk_sse[chunk] = sse
    return chunk_sse.sum()


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def reduce_gradients(partials, gaussian_start, conic, grads):
    """Sum each Gaussian's partials and map the conic gradient to ``(a, b, c)``.

    ``grads`` is ``(N, 8)`` in the parameter layout (mean, covariance, colour).
    """
    for g in numba.prange(grads.shape[0]):
        acc = np.zeros(8, np.float32)
        for s in range(gaussian_start[g], gaussian_start[g + 1]):
            for i in range(8):
                acc[i] += partials[s, i]
        ga, gb, gc = covariance_grad_from_conic_grad(conic[g, 0], conic[g, 1], conic[g, 2], acc[2], acc[3], acc[4])
        grads[g, 0], grads[g, 1] = acc[0], acc[1]
        grads[g, 2], grads[g, 3], grads[g, 4] = ga, gb, gc
        grads[g, 5], grads[g, 6], grads[g, 7] = acc[5], acc[6], acc[7]
