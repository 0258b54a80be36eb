"""Rate-distortion optimised quantisation of an encode's codes (our departure, docs/recipes.md,
"Codes chosen for the file").

Quantisation-aware training ends with every value rounded to its nearest
code (docs/algorithm.md §6.3), which is the code of least distortion for that
value alone but not the code of least ``D + lambda R`` for the file: a
neighbouring code may draw the image almost as well and cost fewer bits (its
stream uses it more often), and the Gaussians' errors do not add up
independently. :func:`optimise_codes` visits the Gaussians in order, tries
for each one every single-code move to a neighbouring code (``+-1`` on each
of its code columns) and its removal, and takes the move of the largest drop
of ``D + lambda R`` if any lowers it. A sweep visits every Gaussian once;
sweeps repeat while they change anything, up to the number asked for.

``D`` is measured exactly as the decoder draws (the unclamped sum of every
Gaussian's ``colour x alpha`` over its tile box and ``alpha >= 1/255``
ellipse, docs/algorithm.md §2-§3, then clamped to ``[0, 1]``), in float64 with the
library ``exp``, on a running sum that each accepted move updates in the
pixels it touches. ``R`` changes as the writer's model would see it: moving
one symbol of an entropy-coded stream from ``q`` to ``q'`` changes its
empirical code length ``n log2 n - sum_k c_k log2 c_k`` by
``g(c_q - 1) - g(c_q) + g(c_q' + 1) - g(c_q')`` with ``g(c) = -c log2 c``,
and removing a Gaussian saves what each of its symbols costs, ``log2(n /
c_q)`` per entropy-coded stream, its fixed-length streams' bits and the mean
bits of a position. The model choice and the histograms' own bytes are left
out: the encoder compares real files afterwards
(:func:`gi_numba.encoder.rate_distortion_cost`). Positions move for
distortion only (their sorted set coding costs about the same wherever they
are, as in :mod:`gi_numba.rate`).

The sweep is serial, so the result is the same on any number of threads.
"""

import math
import time

import numba
import numpy as np

from . import bitstream
from .codes import QuantizedGaussians
from .coding import ROLES
from .defaults import ATTRIBUTE_SIZES
from .interrupt import interruptible_range
from .metrics import psnr
from .quantize import dequantize
from .raster.maths import SIGMA_CUTOFF, TILE, project_one
from .training import Progress

#: A move is taken only if it lowers ``D + lambda R`` (in squared error summed over the image) by more than this.
MIN_GAIN = 1e-9
#: The code arrays of :class:`QuantizedGaussians`, in order: the roles every coding's attributes take.
CODE_NAMES = ROLES
#: The code columns of a file in :class:`QuantizedGaussians` order: ``(role, column)``, in every coding.
COLUMNS = tuple((role, column) for role in ROLES for column in range(ATTRIBUTE_SIZES[role]))
#: Moves per Gaussian: each column one code down, then one code up.
MOVES = 2 * len(COLUMNS)
#: Whether each move leaves the Gaussian's mean and covariance (so its alphas) as they are: the colour moves.
KEEPS_SHAPE = np.array([COLUMNS[move // 2][0] == "colour" for move in range(MOVES)])


def optimise_codes(codes, target, lmbda, sweeps, progress=None) -> QuantizedGaussians:
    """``codes`` with the moves of :mod:`this module <gi_numba.rdo>` that lower ``D + lambda R`` applied.

    ``target`` is the ``(H, W, 3)`` float32 image in ``[0, 1]``, ``lmbda`` the rate
    weight in MSE per bpp (:mod:`gi_numba.rate`), ``sweeps`` the most passes
    over the Gaussians. Returns new :class:`QuantizedGaussians` (Gaussians
    removed by a sweep are dropped); ``codes`` is not changed. The
    Gaussians are visited in the file's order (:meth:`~gi_numba.codes.QuantizedGaussians.sorted_by_position`), so a file's
    own codes give the same result as the encoder's. ``progress`` sees a
    :class:`~gi_numba.training.Progress` (phase ``"RDO"``) after each sweep; Ctrl-C
    (:mod:`gi_numba.interrupt`) ends the sweeps after the current one.
    """
    codes = codes.sorted_by_position()
    height, width = target.shape[:2]
    image = np.ascontiguousarray(target, np.float32)
    total = rendered_sum(dequantize(codes).astype(np.float64), height, width)
    start = time.perf_counter()
    for sweep in interruptible_range(sweeps):
        if codes.n_gaussians == 0:
            break
        moved, codes = _sweep(codes, image, total, lmbda)
        if progress is not None:
            quality = psnr(np.clip(total, 0.0, 1.0), image)
            progress(Progress(sweep, sweeps, quality, quality, codes.n_gaussians, time.perf_counter() - start,
                              phase="RDO"))
        if not moved:
            break
    return codes


@numba.njit(cache=True)
def rendered_sum(params, height, width) -> np.ndarray:
    """The unclamped ``(H, W, 3)`` float64 sum ``sum_g colour_g alpha_g`` that ``params`` (render-ready,
    float64) draw."""
    total = np.zeros((height, width, 3))
    for g in range(params.shape[0]):
        _add_gaussian(params[g], 1.0, total)
    return total


def _sweep(codes, image, total, lmbda):
    """One pass over the Gaussians; returns ``(whether anything moved, the codes after it)``."""
    q = codes.quantizers
    current = dequantize(codes).astype(np.float64)
    candidates, valid = _candidate_parameters(codes)
    streams = bitstream.estimated_streams(codes)
    symbols, coded, counts = _stream_state(codes, streams)
    fixed_bits, position_bits = _removal_constants(codes, streams)
    choice = _greedy_sweep(current, candidates, valid, KEEPS_SHAPE, symbols, coded, counts,
                           fixed_bits + position_bits, image, total, 3.0 * lmbda)
    if not np.any(choice >= 0):
        return False, codes
    columns = _code_columns(codes)
    for move in range(MOVES):
        name, column = COLUMNS[move // 2]
        columns[name][choice == move, column] += 1 if move % 2 else -1
    keep = choice != MOVES
    return True, QuantizedGaussians(q, *(columns[name][keep].astype(np.uint16) for name in CODE_NAMES))


def _code_columns(codes):
    """The code arrays of ``codes`` by attribute, as independent int64 copies."""
    return {name: np.array(getattr(codes, name), np.int64) for name in CODE_NAMES}


def _candidate_parameters(codes):
    """``(N, MOVES, 8)`` float64 render-ready parameters of every move, and whether each stays in range."""
    n = codes.n_gaussians
    candidates = np.zeros((n, MOVES, 8))
    valid = np.zeros((n, MOVES), np.bool_)
    columns = _code_columns(codes)
    for move in range(MOVES):
        name, column = COLUMNS[move // 2]
        levels = 2 ** codes.quantizers.bits[name]
        kept = columns[name][:, column].copy()
        moved = kept + (1 if move % 2 else -1)
        valid[:, move] = (moved >= 0) & (moved < levels)
        columns[name][:, column] = np.clip(moved, 0, levels - 1)
        shifted = QuantizedGaussians(codes.quantizers, *(columns[key].astype(np.uint16) for key in CODE_NAMES))
        candidates[:, move] = dequantize(shifted)
        columns[name][:, column] = kept
    return candidates, valid


def _stream_state(codes, streams):
    """Each code column's symbols ``(N, C)``, whether its stream is entropy-coded ``(C,)`` (positions: never)
    and its symbol counts ``(C, 2^16)``; ``streams`` as :func:`gi_numba.bitstream.estimated_streams` gives them
    (their columns in the same order)."""
    symbols = np.stack([getattr(codes, name)[:, column].astype(np.int64) for name, column in COLUMNS], axis=1)
    coded = np.array([attribute != "position" and model != "fixed"
                      for (attribute, _), (_, model, _) in zip(COLUMNS, streams)])
    counts = np.zeros((len(COLUMNS), 2 ** 16), np.int64)
    for column in range(len(COLUMNS)):
        counts[column] = np.bincount(symbols[:, column], minlength=2 ** 16)
    return symbols, coded, counts


def _removal_constants(codes, streams):
    """Bits a removed Gaussian saves besides its entropy-coded symbols: its fixed-length streams' and the mean
    bits of a position in the file (``streams`` as for :func:`_stream_state`)."""
    bits = codes.quantizers.bits
    fixed = sum(bits[attribute] for (attribute, _), (_, model, _) in zip(COLUMNS, streams)
                if attribute != "position" and model == "fixed")
    position = sum(size for (attribute, _), (_, _, size) in zip(COLUMNS, streams) if attribute == "position")
    return float(fixed), position / codes.n_gaussians


@numba.njit(cache=True)
def _entropy_term(count):
    """``g(c) = -c log2 c`` (0 at 0): a symbol's count's share of a stream's empirical code length."""
    return -count * math.log2(count) if count > 0 else 0.0


@numba.njit(cache=True)
def _move_bits(counts, old, new):
    """Change of a stream's empirical code length when one symbol moves from ``old`` to ``new``."""
    return (_entropy_term(counts[old] - 1) - _entropy_term(counts[old])
            + _entropy_term(counts[new] + 1) - _entropy_term(counts[new]))


@numba.njit(cache=True)
def _removal_bits(counts, old, n):
    """Change of a stream's empirical code length when one of its ``n`` symbols, ``old``, is removed."""
    before = n * math.log2(n) + _entropy_term(counts[old])
    after = (n - 1) * math.log2(n - 1) + _entropy_term(counts[old] - 1) if n > 1 else 0.0
    return after - before


@numba.njit(cache=True)
def _footprint(p, height, width):
    """``(drawn, A, B, C, x0, x1, y0, y1)``: the conic of a render-ready Gaussian ``p`` and the pixel rectangle
    (upper ends exclusive) holding its tile box's part of its ``alpha >= 1/255`` ellipse."""
    n_tiles_x, n_tiles_y = -(-width // TILE), -(-height // TILE)
    drawn, A, B, C, tx0, tx1, ty0, ty1, _, _, _, _ = project_one(
        np.float32(p[0]), np.float32(p[1]), np.float32(p[2]), np.float32(p[3]), np.float32(p[4]),
        np.float32(0.0), n_tiles_x, n_tiles_y)
    if not drawn:
        return False, 0.0, 0.0, 0.0, 0, 0, 0, 0
    rx = math.sqrt(2.0 * SIGMA_CUTOFF * float(np.float32(p[2])))
    ry = math.sqrt(2.0 * SIGMA_CUTOFF * float(np.float32(p[4])))
    x0 = max(tx0 * TILE, int(math.floor(p[0] - rx)))
    x1 = min(tx1 * TILE, width, int(math.ceil(p[0] + rx)) + 1)
    y0 = max(ty0 * TILE, int(math.floor(p[1] - ry)))
    y1 = min(ty1 * TILE, height, int(math.ceil(p[1] + ry)) + 1)
    return x0 < x1 and y0 < y1, A, B, C, x0, x1, y0, y1


@numba.njit(cache=True)
def _alpha(p, A, B, C, x0, x1, y0, y1, px, py):
    """``alpha`` of the Gaussian ``p`` (conic ``A, B, C``, rectangle ``x0..y1``) at pixel ``(px, py)``."""
    if px < x0 or px >= x1 or py < y0 or py >= y1:
        return 0.0
    dx, dy = float(np.float32(p[0])) - px, float(np.float32(p[1])) - py
    sigma = 0.5 * (A * dx * dx + C * dy * dy) + B * dx * dy
    if sigma < 0.0 or sigma > SIGMA_CUTOFF:
        return 0.0
    return math.exp(-sigma)


@numba.njit(cache=True)
def _patch(p, height, width):
    """``(x0, x1, y0, y1, alphas)``: the Gaussian ``p``'s rectangle (:func:`_footprint`, upper ends exclusive)
    and its ``alpha`` at each pixel of it; an empty rectangle if it is not drawn."""
    drawn, A, B, C, x0, x1, y0, y1 = _footprint(p, height, width)
    if not drawn:
        return 0, 0, 0, 0, np.zeros((0, 0))
    alphas = np.empty((y1 - y0, x1 - x0))
    for py in range(y0, y1):
        for px in range(x0, x1):
            alphas[py - y0, px - x0] = _alpha(p, A, B, C, x0, x1, y0, y1, px, py)
    return x0, x1, y0, y1, alphas


@numba.njit(cache=True)
def _alpha_in(patch, px, py):
    """The ``alpha`` a :func:`_patch` holds at pixel ``(px, py)`` (0 outside it)."""
    x0, x1, y0, y1, alphas = patch
    if px < x0 or px >= x1 or py < y0 or py >= y1:
        return 0.0
    return alphas[py - y0, px - x0]


@numba.njit(cache=True)
def _add_gaussian(p, sign, total):
    """Add ``sign`` times the Gaussian ``p``'s ``colour x alpha`` to the running sum ``total``."""
    _add_patch(p, _patch(p, total.shape[0], total.shape[1]), sign, total)


@numba.njit(cache=True)
def _add_patch(p, patch, sign, total):
    """:func:`_add_gaussian` with the Gaussian's :func:`_patch` already computed."""
    x0, x1, y0, y1, alphas = patch
    for py in range(y0, y1):
        for px in range(x0, x1):
            alpha = alphas[py - y0, px - x0]
            if alpha > 0.0:
                for k in range(3):
                    total[py, px, k] += sign * float(np.float32(p[5 + k])) * alpha


@numba.njit(cache=True)
def _patch_change(old, old_patch, new, new_patch, image, total):
    """Change of the squared error summed over the image when Gaussian ``old`` becomes ``new``, from their
    patches (:func:`_patch`; an empty one for a removal)."""
    a0, a1, b0, b1, _ = old_patch
    c0, c1, e0, e1, _ = new_patch
    if a0 == a1:
        a0, a1, b0, b1 = c0, c1, e0, e1
    elif c0 == c1:
        c0, c1, e0, e1 = a0, a1, b0, b1
    change = 0.0
    for py in range(min(b0, e0), max(b1, e1)):
        for px in range(min(a0, c0), max(a1, c1)):
            alpha0 = _alpha_in(old_patch, px, py)
            alpha1 = _alpha_in(new_patch, px, py)
            if alpha0 == 0.0 and alpha1 == 0.0:
                continue
            for k in range(3):
                before = total[py, px, k]
                after = before - float(np.float32(old[5 + k])) * alpha0 + float(np.float32(new[5 + k])) * alpha1
                error0 = min(max(before, 0.0), 1.0) - image[py, px, k]
                error1 = min(max(after, 0.0), 1.0) - image[py, px, k]
                change += error1 * error1 - error0 * error0
    return change


@numba.njit(cache=True)
def _greedy_sweep(current, candidates, valid, keeps_shape, symbols, coded, counts, removal_constant, image, total,
                  bit_weight):
    """Visit each Gaussian once, take its best move if it lowers ``D + lambda R``; returns the moves taken
    (``-1`` none, ``0 .. MOVES - 1`` a column up or down, ``MOVES`` removal). ``keeps_shape`` is
    :data:`KEEPS_SHAPE`; ``bit_weight`` is ``3 lambda``: the squared error summed over the image that one bit is
    worth. ``total`` and ``counts`` are updated."""
    n, moves = candidates.shape[0], candidates.shape[1]
    choice = np.full(n, -1, np.int64)
    remaining = n
    height, width = total.shape[0], total.shape[1]
    gone = (0, 0, 0, 0, np.zeros((0, 0)))
    for g in range(n):
        best_gain, best_move = MIN_GAIN, -1
        patch = _patch(current[g], height, width)
        best_patch = patch
        for move in range(moves):
            if not valid[g, move]:
                continue
            column = move // 2
            bits = 0.0
            if coded[column]:
                bits = _move_bits(counts[column], symbols[g, column], symbols[g, column] + (1 if move % 2 else -1))
            moved_patch = patch if keeps_shape[move] else _patch(candidates[g, move], height, width)
            gain = -(_patch_change(current[g], patch, candidates[g, move], moved_patch, image, total)
                     + bit_weight * bits)
            if gain > best_gain:
                best_gain, best_move, best_patch = gain, move, moved_patch
        if remaining > 1:
            bits = -removal_constant
            for column in range(symbols.shape[1]):
                if coded[column]:
                    bits += _removal_bits(counts[column], symbols[g, column], remaining)
            gain = -(_patch_change(current[g], patch, current[g], gone, image, total) + bit_weight * bits)
            if gain > best_gain:
                best_gain, best_move = gain, moves
        if best_move < 0:
            continue
        choice[g] = best_move
        _add_patch(current[g], patch, -1.0, total)
        if best_move == moves:
            remaining -= 1
            for column in range(symbols.shape[1]):
                counts[column, symbols[g, column]] -= 1
            continue
        column = best_move // 2
        moved = symbols[g, column] + (1 if best_move % 2 else -1)
        counts[column, symbols[g, column]] -= 1
        counts[column, moved] += 1
        symbols[g, column] = moved
        current[g] = candidates[g, best_move]
        _add_patch(current[g], best_patch, 1.0, total)
    return choice
