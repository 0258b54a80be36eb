"""Rate control: an encode at a target rate (``--bpp``) or quality (``--psnr``) instead of a count of Gaussians.

Both search the Gaussian count ``N`` with whole encodes
(:func:`gi_numba.encoder.compress`): :func:`compress_to_rate` predicts ``N``
from a short pilot encode, :func:`compress_to_psnr` bisects it.
:func:`encode` takes exactly one of the three.
"""

import math

from .defaults import fixed_bits_per_gaussian
from .encoder import compress
from .errors import GIError
from .fit import as_target
from .limits import check_number
from .recipes import DEFAULT_RECIPE, recipe_named

#: ``--bpp`` lands within this relative distance of the target.
RATE_TOLERANCE = 0.10
#: Bits per Gaussian of a file of a recipe with RDOQ (the default's: 30-34 on Kodak at 0.1-0.5 bpp), where its
#: ``--bpp`` pilot starts; a recipe without starts at the fixed-length cost.
TYPICAL_BITS_PER_GAUSSIAN = 32
#: RDOQ sweeps of a ``--bpp`` pilot (of a recipe with RDOQ).
PILOT_RDO_SWEEPS = 2
#: A full encode's stream bytes per Gaussian over its pilot's, for a pilot with RDOQ: the median on the 24
#: Kodak images at 0.25 bpp was 1.05 (0.96-1.22; RDOQ removes more of a short fit's Gaussians), docs/recipes.md.
PILOT_BYTES_RATIO = 1.05


def encode(image, n_gaussians=None, bpp=None, psnr=None, **options) -> tuple:
    """``(bytes, EncodeReport)`` with ``n_gaussians`` (:func:`~gi_numba.encoder.compress`), at ``bpp``
    (:func:`compress_to_rate`) or at ``psnr`` dB (:func:`compress_to_psnr`).

    Exactly one of the three is given; ``options`` are :func:`~gi_numba.encoder.compress`'s.
    """
    if sum(value is not None for value in (n_gaussians, bpp, psnr)) != 1:
        raise GIError("give exactly one of a number of Gaussians, a rate in bpp and a PSNR in dB")
    if bpp is not None:
        return compress_to_rate(image, bpp, **options)
    if psnr is not None:
        return compress_to_psnr(image, psnr, **options)
    return compress(image, n_gaussians, return_report=True, **options)


def compress_to_rate(image, bpp, *, max_tries=2, **options) -> tuple:
    """Encode at about ``bpp`` bits per pixel; returns ``(bytes, EncodeReport)``.

    A file is a header of a fixed size plus streams whose bytes per Gaussian
    barely depend on ``N``, so a *pilot* encode measures both: ``N`` from a
    typical cost (:data:`TYPICAL_BITS_PER_GAUSSIAN` for a recipe with RDOQ,
    else the fixed-length cost, 72 bits per Gaussian in version 1), fitted
    for a tenth of the iterations (:func:`pilot_options`). ``N`` for the
    target then follows (:func:`_count_for_bytes`, with
    :data:`PILOT_BYTES_RATIO` after a pilot with RDOQ), and one full encode;
    a second (``max_tries``) only if the real file missed by more than 10%,
    with ``N`` from the first full encode's own measure. ``report.encodes``
    counts the full encodes.
    """
    target, _ = as_target(image, options.get("max_pixels"))
    pixels = target.shape[0] * target.shape[1]
    bpp = check_number(bpp, "the target rate (bpp)", 0, above=True)
    goal = bpp * pixels / 8.0
    with_rdo = _recipe_of(options).encode.rdo_sweeps > 0
    bits = TYPICAL_BITS_PER_GAUSSIAN if with_rdo else fixed_bits_per_gaussian()
    n = _possible_count(round(8.0 * goal / bits), bpp, pixels)
    _, pilot = compress(image, n, return_report=True, **pilot_options(options))
    if not pilot.interrupted:
        ratio = PILOT_BYTES_RATIO if with_rdo else 1.0
        n = _possible_count(_count_for_bytes(pilot, n, goal, ratio), bpp, pixels)
    best = None
    for tries in range(1, max_tries + 1):
        data, report = compress(image, n, return_report=True, **options)
        report.encodes = tries
        error = abs(report.bpp - bpp) / bpp
        if best is None or error < abs(best[1].bpp - bpp) / bpp:
            best = (data, report)
        if error <= RATE_TOLERANCE or report.interrupted or pilot.interrupted:
            break
        n = _possible_count(_count_for_bytes(report, n, goal), bpp, pixels)
    return best


def _count_for_bytes(report, asked, goal, ratio=1.0):
    """The count to ask for so that the file takes ``goal`` bytes, from ``report`` of an encode asked for ``asked``
    whose streams' bytes per Gaussian are ``1 / ratio`` of the encode to come.

    The header takes a fixed size; the streams grow with the Gaussians asked
    for (pruning may keep fewer of them in the file, in about the same proportion).
    """
    streams = sum(stream.nbytes for stream in report.streams)
    header = report.nbytes - streams
    return round((goal - header) * asked / max(ratio * streams, 1))


def _recipe_of(options):
    """The training recipe that :func:`compress` ``options`` name (the default if none)."""
    return recipe_named(options.get("recipe") or DEFAULT_RECIPE)


def pilot_options(options) -> dict:
    """:func:`compress` options of a rate pilot: a tenth of the iterations (at least 200), QAT in proportion,
    at most :data:`PILOT_RDO_SWEEPS` of RDO (:mod:`gi_numba.rdo`; docs/recipes.md)."""
    recipe = _recipe_of(options)
    asked = options.get("iterations")
    full = recipe.encode.warmup.iterations if asked is None else check_number(asked, "iterations", 1, integer=True)
    iterations = min(max(full // 10, 200), full)
    qat = options.get("qat_iterations")
    if qat is not None:
        qat = min(qat, max(qat // 10, 1))
        if recipe.encode.qat_share is not None:  # one pass: QAT within the pilot's iterations
            qat = min(qat, iterations - 1)
    recipe = recipe.with_encode(rdo_sweeps=min(recipe.encode.rdo_sweeps, PILOT_RDO_SWEEPS))
    return dict(options, iterations=iterations, qat_iterations=qat, recipe=recipe, progress=None)


def _possible_count(n, bpp, pixels):
    """``n`` when it is a possible Gaussian count for ``pixels`` pixels, else :class:`GIError`."""
    if n < 1 or n > pixels:
        raise GIError(f"{bpp} bpp needs about {n} Gaussians, outside 1..{pixels} for this image")
    return n


def compress_to_psnr(image, target_psnr, *, max_tries=6, **options) -> tuple:
    """The smallest file found that decodes at ``target_psnr`` dB or more; returns ``(bytes, EncodeReport)``.

    PSNR grows with the Gaussian count, so the count is searched with whole
    encodes: from the count whose fixed-length cost is 1 bpp, doubled (or
    halved) until the target is bracketed, then bisected in ``log N`` until
    the bracket is within 10%, at most ``max_tries`` encodes. If no count
    reaches the target, the file with the highest PSNR is returned (its
    ``report.psnr`` says what it reached).
    """
    target, _ = as_target(image, options.get("max_pixels"))
    pixels = target.shape[0] * target.shape[1]
    target_psnr = check_number(target_psnr, "the target PSNR (dB)", 0, above=True)
    n = min(max(round(pixels / fixed_bits_per_gaussian()), 1), pixels)
    missed, reached = 0, None  # the largest count known to miss the target, the smallest known to reach it
    smallest, best = None, None
    for _ in range(max_tries):
        data, report = compress(image, n, return_report=True, **options)
        if best is None or report.psnr > best[1].psnr:
            best = (data, report)
        if report.psnr >= target_psnr:
            reached = n
            if smallest is None or len(data) < len(smallest[0]):
                smallest = (data, report)
        else:
            missed = n
        if report.interrupted:
            break
        n = _next_count(missed, reached, pixels)
        if n is None:
            break
    return smallest or best


def _next_count(missed, reached, pixels):
    """The next Gaussian count of :func:`compress_to_psnr`'s search, or None once it has converged."""
    if reached is None:
        return None if missed >= pixels else min(2 * missed, pixels)
    if missed == 0:
        return None if reached == 1 else reached // 2
    candidate = round(math.sqrt(missed * reached))
    return None if reached <= 1.1 * missed or candidate in (missed, reached) else candidate
