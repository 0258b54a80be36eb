"""Per-Gaussian formulas shared by every backend (docs/algorithm.md §2-§3).

Each function is a small ``@njit`` scalar function, so the CPU kernels inline
it and the CUDA kernels can call it as a device function: a formula lives in
exactly one place.
"""

import math

import numba
import numpy as np

#: A term is skipped when ``alpha = exp(-sigma) < 1/255``, i.e. ``sigma > ln 255``.
SIGMA_CUTOFF = math.log(255.0)

#: Gaussians are culled to ``TILE x TILE`` tiles: each is drawn only in the
#: tiles of its 3-sigma box (docs/algorithm.md §2).
TILE = 16

#: The rasterising kernels work on tiles ``TILE`` columns wide (one 16-wide
#: vector per pixel row) and ``TILE_ROWS`` rows tall: two culling tiles
#: stacked. An entry keeps only the rows of its Gaussian's box
#: (:func:`gaussian_band_rows`), so the terms are exactly those of 16x16
#: tiles, but a tall ellipse makes about a third fewer (tile, Gaussian)
#: entries, each with more rows: less per-entry work in binning and in the
#: kernels (measured: a training pass 8-11 % faster than with 16-row tiles).
TILE_ROWS = 32

#: Pixels added to each side of a row run (:func:`band_rows`), so rounding never drops a term.
RUN_SLACK = 1e-3

_inline = dict(cache=True, inline="always", fastmath=True)

# float32 constants: a float64 literal would promote the hot loops to float64.
_SIXTEENTH = np.float32(0.0625)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)

#: Coefficients of the degree-4 polynomial of ``exp(y)`` on ``[-ln 255 / 16, 0]``
#: with the smallest largest relative error (8.1e-8), found by Lawson's
#: reweighted least squares on 2 000 Chebyshev nodes; rounded to float32 they
#: stay within 1.03e-7.
EXP_COEFFS = tuple(np.float32(c) for c in (0.9999999403953552, 0.9999889135360718, 0.49975043535232544,
                                            0.16467033326625824, 0.03499788045883179))
_E0, _E1, _E2, _E3, _E4 = EXP_COEFFS

#: The exponent in the scale the CPU kernels use, ``u = -sigma / 16``: a term is
#: skipped when ``u < U_CUTOFF``.
U_CUTOFF = -SIGMA_CUTOFF / 16.0


@numba.njit(**_inline)
def exp_sixteenfold(u):
    """``exp(16 u)`` for ``u`` in ``[-ln 255 / 16, 0]`` without a library call.

    ``exp(16 u) = exp(u)^16``: the minimax polynomial of ``exp(u)``
    (:data:`EXP_COEFFS`) by Horner's rule, then squared four times: eight
    multiplies or multiply-adds of plain arithmetic, so LLVM vectorises loops that call it
    (this Numba build has no vector ``exp``). The squarings multiply the
    error by 16: below 3.5e-6 relative in float32, i.e. under 3.5e-6 absolute
    for an alpha in ``[1/255, 1]``.
    """
    p = (((_E4 * u + _E3) * u + _E2) * u + _E1) * u + _E0
    p = p * p
    p = p * p
    p = p * p
    return p * p


@numba.njit(**_inline)
def fast_exp(x):
    """``exp(x)`` for ``x`` in ``[-ln 255, 0]``: :func:`exp_sixteenfold` of ``x / 16``."""
    return exp_sixteenfold(x * _SIXTEENTH)


@numba.njit(**_inline)
def filtered_covariance(a, b, c, lam):
    """The CAF-filtered covariance ``S' = S + lam * I2`` (docs/algorithm.md §1)."""
    return a + lam, b, c + lam


@numba.njit(**_inline)
def conic_of(a, b, c):
    """Inverse ``Q = (A, B, C)`` of the covariance ``(a, b, c)`` and its determinant.

    The caller must check ``det > 0`` before using the conic.
    Tutorial: step 1 of docs/tutorial.md.
    """
    det = a * c - b * b
    inv = 1.0 / det if det > 0.0 else 0.0
    return c * inv, -b * inv, a * inv, det


@numba.njit(**_inline)
def eigen_radii(a, c, det):
    """Major and minor 3-sigma radii ``ceil(3 sqrt(l1,2))`` (docs/algorithm.md §2).

    ``l1,2 = m +- sqrt(max(0.1, m^2 - det))`` with ``m = (a + c) / 2``.
    A non-positive minor eigenvalue gives minor radius 0.
    Tutorial: step 1 of docs/tutorial.md.
    """
    m = 0.5 * (a + c)
    root = math.sqrt(max(0.1, m * m - det))
    major = math.ceil(3.0 * math.sqrt(m + root))
    low = m - root
    minor = math.ceil(3.0 * math.sqrt(low)) if low > 0.0 else 0.0
    return major, minor


@numba.njit(**_inline)
def tile_range(centre, radius, n_tiles):
    """Tiles ``[lo, hi)`` along one axis touched by ``[centre - r, centre + r]``.

    ``lo = clamp(int((centre - r) / 16))``, ``hi = clamp(int((centre + r) / 16 + 1))``,
    with ``int`` truncating toward zero as in C.
    """
    lo = int((centre - radius) / TILE)
    hi = int((centre + radius) / TILE + 1.0)
    return min(max(lo, 0), n_tiles), min(max(hi, 0), n_tiles)


@numba.njit(**_inline)
def project_one(x, y, a, b, c, lam, n_tiles_x, n_tiles_y):
    """Projection of one Gaussian (docs/algorithm.md §2), in float64.

    Takes its float32 mean, covariance and CAF filter. Returns ``(drawn, A, B,
    C, tx0, tx1, ty0, ty1, slope, spread, ex, tx)``: whether it is drawn at
    all, the conic of the filtered covariance, the tile box (upper ends
    exclusive) and the ellipse extent :func:`row_range` takes; all zeros when
    it is not drawn. Not drawn: a
    mean that is not finite, a filtered covariance that is not positive
    definite, a minor 3-sigma radius under one pixel, or a box off the grid.
    """
    hidden = (False, 0.0, 0.0, 0.0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)
    mx, my = float(x), float(y)
    if not (math.isfinite(mx) and math.isfinite(my)):
        return hidden
    fa, fb, fc = filtered_covariance(a, b, c, lam)
    a64, b64, c64 = float(fa), float(fb), float(fc)
    A, B, C, det = conic_of(a64, b64, c64)
    if not (det > 0.0 and math.isfinite(det)):
        return hidden
    major, minor = eigen_radii(a64, c64, det)
    if minor < 1.0:
        return hidden
    tx0, tx1 = tile_range(mx, major, n_tiles_x)
    ty0, ty1 = tile_range(my, major, n_tiles_y)
    if tx0 >= tx1 or ty0 >= ty1:
        return hidden
    return (True, A, B, C, tx0, tx1, ty0, ty1, b64 / a64, det / (a64 * a64),
            math.sqrt(2.0 * SIGMA_CUTOFF * a64), b64 * math.sqrt(2.0 * SIGMA_CUTOFF / c64))


@numba.njit(**_inline)
def row_range(mx, my, slope, spread, ex, tx, xa, xb):
    """Vertical extent ``[y_lo, y_hi]`` of the ellipse ``sigma <= ln 255`` over columns ``[xa, xb]``.

    With the filtered covariance ``(a, b, c)`` and ``det = ac - b^2``:
    ``slope = b / a``, ``spread = det / a^2``, ``ex = sqrt(2 ln255 a)`` the
    ellipse's half-width and ``tx = b sqrt(2 ln255 / c)`` the column offset
    ``dx = mx - x`` of its lowest point. For a column at offset ``dx`` the
    ellipse spans ``y = my - slope dx -+ sqrt(spread (ex^2 - dx^2))``; the lower
    edge is convex with its minimum at ``dx = tx``, the upper edge concave with
    its maximum at ``dx = -tx``, so each extreme over the band sits at the
    clamp of that offset. Returns ``y_lo > y_hi`` when the band misses the ellipse.
    """
    lo = max(mx - xb, -ex)
    hi = min(mx - xa, ex)
    if lo > hi:
        return 1.0, 0.0
    d1 = min(max(tx, lo), hi)
    d2 = min(max(-tx, lo), hi)
    y_lo = my - slope * d1 - math.sqrt(max(spread * (ex * ex - d1 * d1), 0.0))
    y_hi = my - slope * d2 + math.sqrt(max(spread * (ex * ex - d2 * d2), 0.0))
    return y_lo, y_hi


@numba.njit(**_inline)
def band_rows(mx, my, slope, spread, ex, tx, xa):
    """First and last pixel row the ellipse reaches over the 16 columns ``[xa, xa + 15]`` of a tile column.

    :func:`row_range` widened by :data:`RUN_SLACK` and rounded inwards to
    whole rows; ``first > last`` when the band misses the ellipse. It depends
    only on the tile column, so binning computes it once per column of a
    Gaussian's box and gives each entry its rows in the tile
    (:func:`~gi_numba.raster.binning.bin_gaussians`).
    """
    y_lo, y_hi = row_range(mx, my, slope, spread, ex, tx, xa, xa + (TILE - 1))
    return math.ceil(y_lo - RUN_SLACK), math.floor(y_hi + RUN_SLACK)


@numba.njit(**_inline)
def kernel_grid_rows(n_tiles_y):
    """Rows of kernel tiles (:data:`TILE_ROWS` pixel rows each) covering ``n_tiles_y`` rows of culling tiles."""
    return (n_tiles_y * TILE + TILE_ROWS - 1) // TILE_ROWS


@numba.njit(**_inline)
def rows_in_box(first_row, last_row, ty0, ty1):
    """The pixel rows ``[first_row, last_row]`` cut to the box's tile rows ``[ty0, ty1)`` (16 pixel rows each).

    ``first > last`` when none is left.
    """
    return max(first_row, ty0 * TILE), min(last_row, ty1 * TILE - 1)


@numba.njit(**_inline)
def band_tile_rows(first_row, last_row):
    """Kernel tile rows ``[first, end)`` (:data:`TILE_ROWS` pixel rows each) holding a row of ``[first_row, last_row]``.

    The rows must be cut to a box first (:func:`rows_in_box`), so none is negative. ``first == end`` when none.
    """
    if first_row > last_row:
        return 0, 0
    return first_row // TILE_ROWS, last_row // TILE_ROWS + 1


@numba.njit(**_inline)
def rows_in_tile(first_row, last_row, y0):
    """Rows ``[r0, r1)`` of the kernel tile whose top row is ``y0`` inside the pixel rows ``[first_row, last_row]``.

    Between 0 and :data:`TILE_ROWS`; ``r0 == r1`` when the band misses the tile.
    """
    r0 = max(first_row - y0, 0)
    r1 = min(last_row - y0 + 1, TILE_ROWS)
    return r0, max(r1, r0)


@numba.njit(**_inline)
def tile_run(mx, my, slope, spread, ex, tx, ty0, ty1, x0, y0):
    """First pixel and pixel count of the rows of a kernel tile that a Gaussian's ellipse reaches inside its box.

    The Gaussian's box has tile rows ``[ty0, ty1)``; the kernel tile's
    top-left pixel is ``(x0, y0)`` and its pixels are numbered row-major, so
    the rows ``[r0, r1)`` of :func:`band_rows` (cut to the box) inside the
    tile (:func:`rows_in_tile`) are the one contiguous run ``[16 r0, 16 r1)``.
    Count 0 when the ellipse misses the tile.
    """
    first, last = band_rows(mx, my, slope, spread, ex, tx, float(x0))
    first, last = rows_in_box(first, last, ty0, ty1)
    r0, r1 = rows_in_tile(first, last, y0)
    return r0 * TILE, (r1 - r0) * TILE


@numba.njit(**_inline)
def gaussian_tile_run(params, ellipse, box, g, x0, y0):
    """:func:`tile_run` of Gaussian ``g`` of a pass's float32 ``params`` and ``ellipse``, widened to float64.

    Binning (:func:`gaussian_band_rows`) widens the same numbers the
    same way, so a kernel that computes its rows finds a row in every listed
    tile. Scalar calls only, so the CUDA simulator can run it as a device function.
    """
    return tile_run(np.float64(params[g, 0]), np.float64(params[g, 1]), np.float64(ellipse[g, 0]),
                    np.float64(ellipse[g, 1]), np.float64(ellipse[g, 2]), np.float64(ellipse[g, 3]),
                    box[g, 2], box[g, 3], x0, y0)


@numba.njit(**_inline)
def gaussian_band_rows(params, ellipse, box, g, column):
    """:func:`band_rows` of Gaussian ``g`` over tile column ``column``, cut to its box (:func:`rows_in_box`).

    Widened to float64 as in :func:`gaussian_tile_run`.
    """
    first, last = band_rows(np.float64(params[g, 0]), np.float64(params[g, 1]), np.float64(ellipse[g, 0]),
                            np.float64(ellipse[g, 1]), np.float64(ellipse[g, 2]), np.float64(ellipse[g, 3]),
                            float(column * TILE))
    return rows_in_box(first, last, box[g, 2], box[g, 3])


@numba.njit(**_inline)
def row_terms(B, half_C, dy):
    """The parts of :func:`sigma_of` that are constant along a pixel row: ``(B dy, C/2 dy^2)``."""
    return B * dy, half_C * dy * dy


@numba.njit(**_inline)
def sigma_in_row(half_A, b_dy, c_dy2, dx):
    """:func:`sigma_of` from the :func:`row_terms` of its row: ``(A/2 dx + B dy) dx + C/2 dy^2``.

    Two multiply-adds per pixel. Scaling the conic by ``-1/16`` gives
    ``u = -sigma / 16``, the argument of :func:`exp_sixteenfold`.
    """
    return (half_A * dx + b_dy) * dx + c_dy2


@numba.njit(**_inline)
def sigma_of(half_A, B, half_C, dx, dy):
    """Gaussian exponent ``sigma = 0.5*(A dx^2 + C dy^2) + B dx dy`` for ``d = mu - p``.

    Takes the conic's diagonal already halved, so a hot loop pays no extra multiply.
    """
    b_dy, c_dy2 = row_terms(B, half_C, dy)
    return sigma_in_row(half_A, b_dy, c_dy2, dx)


@numba.njit(**_inline)
def clamped_error(out, target, scale):
    """A pixel channel's squared error of ``clamp(out, 0, 1)`` and its gradient ``dL/d(out)`` (docs/algorithm.md §3).

    ``scale`` is ``2 / (3 H W)``. The clamp passes gradient only where
    ``0 <= out <= 1``, inclusive as PyTorch's ``clamp`` is (an all-zero start
    with colours 0 could never move otherwise).
    """
    diff = min(max(out, _ZERO), _ONE) - target
    return diff * diff, (scale * diff if (out >= _ZERO and out <= _ONE) else _ZERO)


@numba.njit(**_inline)
def pixel_gradient_terms(a, go_r, go_g, go_b, cr, cg, cb, dx, dy):
    """One pixel's terms of an entry's backward sums (docs/algorithm.md §3).

    With ``d = mu - p``, ``dL/dsigma = -alpha (col . dL/d(out))``; returns
    ``dL/dsigma`` times ``(dx, dy, dx^2, dx dy, dy^2)`` and ``alpha dL/d(out)``
    per channel. An entry sums them over its pixels, then
    :func:`store_partials` applies its conic once.
    """
    ds = -a * (cr * go_r + cg * go_g + cb * go_b)
    dsx = ds * dx
    dsy = ds * dy
    return dsx, dsy, dsx * dx, dsx * dy, dsy * dy, a * go_r, a * go_g, a * go_b


@numba.njit(**_inline)
def store_partials(partials, slot, A, B, C, sx, sy, sxx, sxy, syy, gr, gg, gb):
    """Write an entry's partials ``(mx, my, A, B, C, r, g, b)`` from its summed :func:`pixel_gradient_terms`.

    The conic ``(A, B, C)`` is applied once per entry:
    ``dsigma/dmu = (A dx + B dy, B dx + C dy)`` and
    ``dsigma/d(A, B, C) = (dx^2/2, dx dy, dy^2/2)``.
    """
    partials[slot, 0] = A * sx + B * sy
    partials[slot, 1] = B * sx + C * sy
    partials[slot, 2] = _HALF * sxx
    partials[slot, 3] = sxy
    partials[slot, 4] = _HALF * syy
    partials[slot, 5] = gr
    partials[slot, 6] = gg
    partials[slot, 7] = gb


@numba.njit(**_inline)
def covariance_grad_from_conic_grad(A, B, C, gA, gB, gC):
    """Chain rule through the inverse ``Q = S'^-1`` (docs/algorithm.md §3).

    With ``G = [[gA, gB/2], [gB/2, gC]]`` the gradient on the symmetric conic,
    ``dL/dS' = -Q G Q``; the off-diagonal parameter ``b`` sits in two matrix
    entries, so its gradient is twice the off-diagonal of that matrix.
    Gradients with respect to ``S`` equal those with respect to ``S'``.
    Tutorial: step 3 of docs/tutorial.md derives it.
    """
    ga = -(A * A * gA + A * B * gB + B * B * gC)
    gb = -(2.0 * A * B * gA + (B * B + A * C) * gB + 2.0 * B * C * gC)
    gc = -(B * B * gA + B * C * gB + C * C * gC)
    return ga, gb, gc


@numba.njit(**_inline)
def gaussian_gradient(partials, first, last, conic, g, grads):
    """Gaussian ``g``'s row of ``grads``: its partials (slots ``first:last``) summed in slot order.

    The partials are ``(mx, my, A, B, C, r, g, b)`` of each (tile, Gaussian)
    entry; the conic part goes to ``(a, b, c)`` by
    :func:`covariance_grad_from_conic_grad`, giving the parameter layout
    (mean, covariance, colour).
    """
    mx = my = gA = gB = gC = cr = cg = cb = _ZERO
    for s in range(first, last):
        mx += partials[s, 0]
        my += partials[s, 1]
        gA += partials[s, 2]
        gB += partials[s, 3]
        gC += partials[s, 4]
        cr += partials[s, 5]
        cg += partials[s, 6]
        cb += partials[s, 7]
    ga, gb, gc = covariance_grad_from_conic_grad(conic[g, 0], conic[g, 1], conic[g, 2], gA, gB, gC)
    grads[g, 0], grads[g, 1] = mx, my
    grads[g, 2], grads[g, 3], grads[g, 4] = ga, gb, gc
    grads[g, 5], grads[g, 6], grads[g, 7] = cr, cg, cb
