"""CUDA rasterisation kernels: project -> bin -> rasterise as ``numba.cuda`` kernels (docs/algorithm.md §2-§3).

The same three steps as the CPU backend, each in its own module as there,
with the same formulas: every per-Gaussian formula is :mod:`.maths`'s Python
function compiled a second time as a CUDA device function
(:func:`~.cuda_device.device_function`), so it lives in one place.

- **Projection** (:mod:`.cuda_project`): one thread per Gaussian: conic,
  ellipse extent, tile box and the number of its tiles the ellipse reaches.
- **Binning** (:mod:`.cuda_binning`): scans, an atomic scatter into per-tile
  lists, then each list sorted, so the lists equal the CPU backend's. Only
  the entry count goes to the host, to size the list buffers.
- **Rasterisation** (this module): one block per kernel tile (16 columns by
  :data:`~.maths.TILE_ROWS` rows, as on the CPU). In the forward pass each
  thread is one pixel and the tile's Gaussians are loaded into shared memory
  in batches of 512. The fused training kernel then writes each pixel's MSE
  gradient to shared memory, and in the backward pass each thread is one
  (tile, Gaussian) entry: it sums that Gaussian's contributions over the
  tile's pixels (the rows its ellipse reaches, as on the CPU) and writes the 8
  partials to the entry's slot. That is the per-block reduction; there are
  no atomics, so the gradients have the same bits on every run.
  :func:`_reduce_kernel` sums each Gaussian's slots, in the CPU's order.

Images are channel-planar ``(3, H, W)`` float32, as on the CPU.
:class:`~.cuda_pipeline.CudaRasterizer` runs the three steps.
"""

import numpy as np
from numba import cuda

from . import maths
from .cuda_device import LINEAR, blocks_for, device_function
from .maths import SIGMA_CUTOFF, TILE, TILE_ROWS

_THREADS = TILE * TILE_ROWS   # one thread per pixel of a tile
_CUTOFF = np.float32(SIGMA_CUTOFF)
_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)

fast_exp = device_function(maths.fast_exp)
sigma_of = device_function(maths.sigma_of)
gaussian_tile_run = device_function(maths.gaussian_tile_run)
gaussian_gradient = device_function(maths.gaussian_gradient)
clamped_error = device_function(maths.clamped_error)
pixel_gradient_terms = device_function(maths.pixel_gradient_terms)
store_partials = device_function(maths.store_partials)


@cuda.jit(device=True)
def _pixel_colour(params, conic, entry_gaussian, first, last, batch, px, py):
    """Unclamped ``sum_g col_g alpha_g`` at pixel ``(px, py)`` over entries ``[first, last)``.

    All threads of the block must call it: batches of 512 Gaussians are
    staged in the shared ``batch`` as ``(x, y, A/2, B, C/2, r, g, b)``.
    """
    tid = cuda.threadIdx.x
    r = g = b = _ZERO
    for start in range(first, last, _THREADS):
        n = min(_THREADS, last - start)
        cuda.syncthreads()
        if tid < n:
            k = entry_gaussian[start + tid]
            batch[tid, 0], batch[tid, 1] = params[k, 0], params[k, 1]
            batch[tid, 2], batch[tid, 3], batch[tid, 4] = _HALF * conic[k, 0], conic[k, 1], _HALF * conic[k, 2]
            batch[tid, 5], batch[tid, 6], batch[tid, 7] = params[k, 5], params[k, 6], params[k, 7]
        cuda.syncthreads()
        for j in range(n):
            s = sigma_of(batch[j, 2], batch[j, 3], batch[j, 4], batch[j, 0] - px, batch[j, 1] - py)
            if s >= _ZERO and s <= _CUTOFF:
                a = fast_exp(-s)
                r += batch[j, 5] * a
                g += batch[j, 6] * a
                b += batch[j, 7] * a
    return r, g, b


@cuda.jit
def _forward_kernel(params, conic, tile_start, entry_gaussian, n_tiles_x, image):
    """Clamped render into ``image`` ``(3, H, W)``: one block per tile, one thread per pixel."""
    batch = cuda.shared.array((_THREADS, 8), np.float32)
    t = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    x = (t % n_tiles_x) * TILE + tid % TILE
    y = (t // n_tiles_x) * TILE_ROWS + tid // TILE
    r, g, b = _pixel_colour(params, conic, entry_gaussian, tile_start[t], tile_start[t + 1], batch,
                            np.float32(x), np.float32(y))
    if x < image.shape[2] and y < image.shape[1]:
        image[0, y, x] = min(max(r, _ZERO), _ONE)
        image[1, y, x] = min(max(g, _ZERO), _ONE)
        image[2, y, x] = min(max(b, _ZERO), _ONE)


@cuda.jit(device=True)
def _entry_partials(params, conic, ellipse, box, entry_gaussian, entry_slot, e, x0, y0, grad_out, partials):
    """Gradient partials ``(mx, my, A, B, C, r, g, b)`` of entry ``e`` over its tile (docs/algorithm.md §3).

    The same sums (:func:`~.maths.pixel_gradient_terms`, then
    :func:`~.maths.store_partials`), in the same pixel order, as the CPU's ``_backward_tile``.
    """
    g = entry_gaussian[e]
    k0, count = gaussian_tile_run(params, ellipse, box, g, x0, y0)
    half_A, B, half_C = _HALF * conic[g, 0], conic[g, 1], _HALF * conic[g, 2]
    cr, cg, cb = params[g, 5], params[g, 6], params[g, 7]
    dx0 = params[g, 0] - np.float32(x0)
    dy0 = params[g, 1] - np.float32(y0)
    sx = sy = sxx = sxy = syy = gr = gg = gb = _ZERO
    for i in range(k0, k0 + count):
        dx = dx0 - np.float32(i % TILE)
        dy = dy0 - np.float32(i // TILE)
        s = sigma_of(half_A, B, half_C, dx, dy)
        if not (s >= _ZERO and s <= _CUTOFF):
            continue
        tx, ty, txx, txy, tyy, tr, tg, tb = pixel_gradient_terms(
            fast_exp(-s), grad_out[0, i], grad_out[1, i], grad_out[2, i], cr, cg, cb, dx, dy)
        sx += tx
        sy += ty
        sxx += txx
        sxy += txy
        syy += tyy
        gr += tr
        gg += tg
        gb += tb
    store_partials(partials, entry_slot[e], conic[g, 0], B, conic[g, 2], sx, sy, sxx, sxy, syy, gr, gg, gb)


@cuda.jit
def _fused_kernel(params, conic, ellipse, box, tile_start, entry_gaussian, entry_slot, target, n_tiles_x, scale,
                  partials, tile_sse):
    """Forward, MSE loss and per-entry backward partials of one tile per block (docs/algorithm.md §2-§3)."""
    batch = cuda.shared.array((_THREADS, 8), np.float32)
    grad_out = cuda.shared.array((3, _THREADS), np.float32)
    pixel_sse = cuda.shared.array(_THREADS, np.float32)
    t = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    height, width = target.shape[1], target.shape[2]
    x0, y0 = (t % n_tiles_x) * TILE, (t // n_tiles_x) * TILE_ROWS
    x, y = x0 + tid % TILE, y0 + tid // TILE
    first, last = tile_start[t], tile_start[t + 1]
    r, g, b = _pixel_colour(params, conic, entry_gaussian, first, last, batch, np.float32(x), np.float32(y))
    sse = _ZERO
    grad_out[0, tid] = grad_out[1, tid] = grad_out[2, tid] = _ZERO
    if x < width and y < height:
        e_r, go_r = clamped_error(r, target[0, y, x], scale)
        e_g, go_g = clamped_error(g, target[1, y, x], scale)
        e_b, go_b = clamped_error(b, target[2, y, x], scale)
        grad_out[0, tid], grad_out[1, tid], grad_out[2, tid] = go_r, go_g, go_b
        sse = e_r + e_g + e_b
    pixel_sse[tid] = sse
    cuda.syncthreads()
    if tid == 0:
        total = 0.0
        for i in range(_THREADS):
            total += pixel_sse[i]
        tile_sse[t] = total
    for e in range(first + tid, last, _THREADS):
        _entry_partials(params, conic, ellipse, box, entry_gaussian, entry_slot, e, x0, y0, grad_out, partials)


@cuda.jit
def _reduce_kernel(partials, gaussian_start, conic, grads):
    """Sum Gaussian ``g``'s slots into its gradient row, as on the CPU (one thread each)."""
    g = cuda.grid(1)
    if g < grads.shape[0]:
        gaussian_gradient(partials, gaussian_start[g], gaussian_start[g + 1], conic, g, grads)


def render_forward(params, projection, tiles, n_tiles_x, image):
    """Render the clamped image into the device ``image`` ``(3, H, W)`` (docs/algorithm.md §2), as the CPU's twin."""
    _forward_kernel[tiles.tile_start.shape[0] - 1, _THREADS](params, projection.conic, tiles.tile_start,
                                                               tiles.entry_gaussian, n_tiles_x, image)


def render_loss_backward(params, projection, tiles, target, n_tiles_x, partials, tile_sse):
    """Fused forward, MSE loss and per-entry partials (docs/algorithm.md §2-§3), as the CPU's twin.

    Writes each tile's squared error to ``tile_sse`` and each entry's 8
    partials to its slot of ``partials``.
    """
    scale = np.float32(2.0 / (3 * target.shape[1] * target.shape[2]))
    _fused_kernel[tiles.tile_start.shape[0] - 1, _THREADS](
        params, *projection, tiles.tile_start, tiles.entry_gaussian, tiles.entry_slot, target, n_tiles_x, scale,
        partials, tile_sse)


def reduce_gradients(partials, gaussian_start, conic, grads):
    """Sum each Gaussian's partials into its ``(N, 8)`` gradient row, as the CPU's twin."""
    if grads.shape[0]:
        _reduce_kernel[blocks_for(grads.shape[0]), LINEAR](partials, gaussian_start, conic, grads)
