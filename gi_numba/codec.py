"""Image codec: ``compress(image, N) -> bytes`` and ``decompress(bytes) -> image`` (ALGORITHM.md §6).

:func:`compress` follows the paper's Figure 2, two phases of the one
training loop (:mod:`gi_numba.training`) and then the file:

1. warm-up: a representation fit with sigmoid colours (§6.1);
2. quantisation-aware training from there (:func:`qat_phase`): growth paused,
   pruning kept, the rasteriser drawing de-quantised attributes
   (:class:`~gi_numba.quantize.QuantizedMap`), keeping the state whose
   quantised render has the best PSNR (§6.2);
3. quantisation, dropping Gaussians whose de-quantised covariance is not
   positive definite, and entropy coding into a ``.gi`` file (§6.3,
   :mod:`gi_numba.bitstream`).

Decoding needs nothing but the bytes: parse, de-quantise, render.
"""

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from . import bitstream
from .defaults import fixed_bits_per_gaussian
from .errors import GIError
from .fit import FitSettings, as_target, fit_target, representation_phase
from .interrupt import catching_sigint, requested
from .limits import check_number
from .metrics import ms_ssim, psnr
from .model import GaussianImage
from .optim import Constant
from .quantize import QuantizedMap, dequantize, initial_quantizers, quantize
from .rate import RateTerm
from .rdo import optimise_codes
from .raster import make_rasterizer
from .strategy import PruneStrategy, TrainState
from .training import HostTraining, Phase, raise_if_diverged, train


@dataclass
class EncodeReport:
    """Facts about one encoding, measured on the written bytes and their decoding."""

    nbytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    n_gaussians: int
    seconds: float
    streams: list
    interrupted: bool = False
    encodes: int = 1  # full encodes behind it (a --bpp encode may need a second; pilots not counted)
    lmbda: float = 0.0  # the rate term's weight in quantisation-aware training (MSE per bpp; 0: none)


def compress(image, n_gaussians, iterations=None, qat_iterations=None, seed=0, *, recipe=None, bits=None, lr=None,
             lmbda=None, backend="cpu", progress=None, progress_every=100, return_report=False, max_pixels=None):
    """Encode an image with ``n_gaussians`` Gaussians into ``.gi`` bytes.

    The ``recipe`` (:mod:`gi_numba.recipes`) says how the ``iterations``
    (default: its own) are spent (:meth:`~gi_numba.recipes.Recipe.encode_phases`):
    ``"paper"`` (ALGORITHM.md §6 exactly) fits for ``iterations`` and then runs
    ``qat_iterations`` (default ``0.2 * iterations``) of quantisation-aware
    training; the default recipe is one pass, QAT the last ``qat_iterations``
    (default a tenth) of the ``iterations``. ``qat_iterations=0`` skips QAT
    (plain post-training quantisation). ``lr`` defaults to the recipe's.
    The recipe also says which ``.gi`` version is written (paper: 1, default:
    3, docs/format.md); ``bits`` overrides that version's default depths
    (v1 ``{"position": 12, "variance": 10, "covariance": 10, "colour": 6}``,
    v2 and v3 ``{"position": 12, "variance": 6, "covariance": 6, "colour": 6}``).
    ``lmbda`` weighs the rate in quantisation-aware training's loss
    ``D + lmbda R`` (MSE per bpp, :mod:`gi_numba.rate`; 0: distortion only);
    by default the recipe's (:func:`rate_weight`: the paper has none).
    With ``return_report`` the result is ``(bytes, EncodeReport)``. An image
    file larger than ``max_pixels`` (:mod:`gi_numba.limits`) is refused.
    ``progress`` sees a :class:`~gi_numba.training.Progress` every
    ``progress_every`` iterations of each phase (``phase`` "warm-up", then "QAT"),
    and after each sweep of rate-distortion optimised quantisation ("RDO").

    Ctrl-C ends the current phase early; an encode interrupted in the warm-up
    skips quantisation-aware training, one interrupted before RDO skips it, and
    either way the bytes of the best state reached are returned with
    ``report.interrupted`` set.
    """
    start = time.perf_counter()
    target, channels = as_target(image, max_pixels)
    height, width = target.shape[:2]
    settings, qat_iterations = encode_settings(n_gaussians, iterations, qat_iterations, seed, recipe, lr, backend)
    _check_bits(bits)
    if lmbda is not None:
        lmbda = check_number(lmbda, "the rate weight lambda", 0)
    with catching_sigint():
        warm = fit_target(target, channels, settings, progress, progress_every, name="warm-up")
        codes, interrupted, lmbda = encode_warm(warm, target, settings, qat_iterations, bits, progress,
                                                progress_every, lmbda)
    data, streams = bitstream.write(codes, height, width, channels)
    if not return_report:
        return data
    decoded = decompress(data, max_pixels=max_pixels)
    report = EncodeReport(len(data), 8.0 * len(data) / (height * width), psnr(decoded, target),
                          ms_ssim(decoded, target), codes.n_gaussians, time.perf_counter() - start, streams,
                          interrupted, lmbda=lmbda)
    return data, report


def encode_settings(n_gaussians, iterations=None, qat_iterations=None, seed=0, recipe=None, lr=None, backend="cpu"):
    """``(FitSettings of the warm-up, QAT iterations)`` of an encode (the recipe's ``encode_phases``)."""
    settings = FitSettings(n_gaussians, iterations=iterations, seed=seed, lr=lr, backend=backend,
                           sigmoid_colours=True, recipe=recipe)
    if qat_iterations is not None:
        qat_iterations = check_number(qat_iterations, "QAT iterations", 0, integer=True)
    warm_iterations, qat_iterations = settings.training_recipe.encode_phases(settings.iterations, qat_iterations)
    return replace(settings, iterations=warm_iterations, recipe=settings.training_recipe), qat_iterations


def rate_weight(warm, target, settings, bits=None, lmbda=None):
    """The ``lambda`` of an encode's quantisation-aware training: ``lmbda`` if given, else the recipe's.

    A recipe's ``rate_slope`` ``k`` sets ``lambda = k D / R`` from the
    warm-up's post-training quantisation (its MSE ``D`` and estimated bpp
    ``R``): along the curve that the Gaussian count traces, PSNR gains about
    3 dB per doubling of the rate, so the curve's slope ``-dD/dR`` is about
    ``D / R`` and ``k = 1`` trades the two at that slope (docs/recipes.md).
    """
    if lmbda is not None:
        return lmbda
    slope = settings.training_recipe.rate_slope
    if slope is None or warm.n_gaussians == 0:
        return 0.0
    version = settings.training_recipe.file_version
    codes = quantize(warm.params, warm.lam, initial_quantizers(warm.params, warm.lam, bits, version))
    render = model_of_codes(codes, warm.height, warm.width).render(backend=settings.backend)
    mse = float(np.mean((render - target) ** 2))
    bpp = bitstream.estimated_file_bits(bitstream.estimated_streams(codes)) / (warm.height * warm.width)
    return slope * mse / bpp


def encode_warm(warm, target, settings, qat_iterations, bits=None, progress=None, progress_every=100, lmbda=None):
    """``(codes, interrupted, lambda)`` of an encode from its warm-up model ``warm`` (fitted with ``settings``).

    Quantisation-aware training for ``qat_iterations`` (none if 0 or if the
    warm-up was interrupted), learning the coding of the recipe's file
    version, then quantisation (ALGORITHM.md §6.2-6.3). The training's loss
    is ``D + lambda R`` (:mod:`gi_numba.rate`) with ``lambda`` from
    :func:`rate_weight` (``lmbda``, else the recipe's); it is 0 when no QAT ran.
    Without ``bits``, QAT runs once at each of the recipe's depth choices
    (:func:`depth_candidates`) and the codes of the lowest ``D + lambda R``
    are kept (:func:`rate_distortion_cost`; docs/recipes.md), and then moved
    to codes of lower ``D + lambda' R`` by the recipe's ``rdo_sweeps`` at its
    ``lambda' = rdo_lambda_scale x lambda`` (:func:`gi_numba.rdo.optimise_codes`).
    """
    version = settings.training_recipe.file_version
    if warm.stats["interrupted"] or qat_iterations == 0:
        quantizers = initial_quantizers(warm.params, warm.lam, bits, version)
        return quantize(warm.params, warm.lam, quantizers), warm.stats["interrupted"], 0.0
    lmbda = rate_weight(warm, target, settings, bits, lmbda)
    final_lr = representation_phase(settings, warm.height, warm.width).lr_at(settings.iterations)
    candidates = depth_candidates(settings.training_recipe, bits)
    best_cost, best_codes = math.inf, None
    for depths in candidates:
        phase = qat_phase(warm, qat_iterations, final_lr, depths, version, lmbda,
                          name="QAT" if len(candidates) == 1 else f"QAT ({depth_label(depths, version)} bits)")
        params, lam, quantizers, interrupted = _quantization_aware_training(
            warm, target, phase, settings.backend, np.random.default_rng(settings.seed), progress, progress_every)
        codes = quantize(params, lam, quantizers)
        cost = rate_distortion_cost(codes, target, lmbda, settings.backend) if len(candidates) > 1 else 0.0
        if best_codes is None or cost < best_cost:
            best_cost, best_codes = cost, codes
        if interrupted:
            break
    recipe = settings.training_recipe
    if recipe.rdo_sweeps and not interrupted:
        best_codes = optimise_codes(best_codes, target, recipe.rdo_lambda_scale * lmbda, recipe.rdo_sweeps, progress)
        interrupted = requested()
    return best_codes, interrupted, lmbda


def depth_candidates(recipe, bits=None):
    """The bit depths an encode's QAT tries: ``bits`` if asked for, else the defaults and the recipe's choices."""
    if bits:
        return [bits]
    return [None] + [dict(choice) for choice in recipe.depth_choices]


def depth_label(bits, version):
    """``position/variance/covariance/colour`` bits of a file of ``version`` with depths ``bits``, e.g. ``12/6/6/6``."""
    defaults = bitstream.format_of(version).coding.default_bits
    return "/".join(str(depth) for depth in dict(defaults, **(bits or {})).values())


def rate_distortion_cost(codes, target, lmbda, backend="cpu"):
    """``D + lambda R`` of the file that ``codes`` make: its decoded MSE plus ``lambda`` times its real bpp."""
    height, width = target.shape[:2]
    data, _ = bitstream.write(codes, height, width, 3)
    decoded = model_of_codes(codes, height, width).render(backend=backend)
    return float(np.mean((decoded - target) ** 2)) + lmbda * 8.0 * len(data) / (height * width)


def qat_phase(warm, iterations, lr, bits=None, version=1, lmbda=0.0, name="QAT"):
    """Quantisation-aware training from the warm-up model ``warm`` (ALGORITHM.md §6.2) as a phase.

    The learning rate stays at ``lr``, the warm-up's last; the strategy
    prunes but never grows (:class:`~gi_numba.strategy.PruneStrategy`); the map draws the de-quantised attributes
    in the coding of file ``version``, its quantisers initialised from the warm-up's Gaussians, and with
    a positive ``lmbda`` the loss is ``D + lmbda R`` (:class:`~gi_numba.rate.RateTerm`). ``name`` labels
    its progress.
    """
    strategy = PruneStrategy(warm.n_gaussians, warm.height, warm.width)
    rate = RateTerm(lmbda, warm.height * warm.width) if lmbda > 0 else None
    return Phase(name, iterations, lr, Constant(), strategy,
                 QuantizedMap(initial_quantizers(warm.params, warm.lam, bits, version), rate=rate))


def _check_bits(bits):
    for name, depth in (bits or {}).items():
        if name not in ("position", "variance", "covariance", "colour"):
            raise GIError(f"unknown attribute {name!r} in bit depths")
        check_number(depth, f"the bit depth of {name}", 1, 16, integer=True)


def _quantization_aware_training(warm, target, phase, backend, rng, progress, progress_every):
    """Run the QAT ``phase`` from ``warm`` on the host (rasterising on ``backend``).

    Returns the best ``(params, lam, quantizers, interrupted)``.
    """
    rasterizer = make_rasterizer(backend, warm.height, warm.width)
    rasterizer.set_target(target.transpose(2, 0, 1))
    state = HostTraining(TrainState.fresh(warm.params.copy(), warm.lam.copy()), rasterizer, target, phase.mapping)
    result = train(state, phase, rng, progress, max(int(progress_every), 1))
    raise_if_diverged(result, None)
    if result.params is None:
        raise KeyboardInterrupt
    return result.params, result.lam, result.extra, result.interrupted


def decompress(data, height=None, width=None, scale=None, backend="cpu", max_pixels=None):
    """Decode ``.gi`` bytes to a float32 ``(H, W, 3)`` image in ``[0, 1]`` (optionally resized).

    The file's size and the output's must each be within ``max_pixels``
    (:mod:`gi_numba.limits`; default 8192 x 8192).
    """
    return decoded_model(data, max_pixels).render(height=height, width=width, scale=scale, backend=backend,
                                                  max_pixels=max_pixels)


def decoded_model(data, max_pixels=None):
    """The :class:`GaussianImage` a ``.gi`` file describes (colours as drawn, no filter)."""
    parsed = bitstream.read(data, max_pixels)
    return model_of_codes(parsed.codes, parsed.height, parsed.width, parsed.channels)


def model_of_codes(codes, height, width, channels=3):
    """The :class:`GaussianImage` that quantised Gaussians draw (de-quantised, no filter)."""
    params = dequantize(codes)
    return GaussianImage(params=params, lam=np.zeros(params.shape[0], np.float32), height=height, width=width,
                         channels=channels)

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


def compress_to_rate(image, bpp, *, max_tries=2, **options):
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
    with_rdo = _recipe_of(options).rdo_sweeps > 0
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
    return FitSettings(1, recipe=options.get("recipe"), sigmoid_colours=True).training_recipe


def pilot_options(options):
    """:func:`compress` options of a rate pilot: a tenth of the iterations (at least 200), QAT in proportion,
    at most :data:`PILOT_RDO_SWEEPS` of RDO (:mod:`gi_numba.rdo`; docs/recipes.md)."""
    settings = FitSettings(1, iterations=options.get("iterations"), recipe=options.get("recipe"), sigmoid_colours=True)
    iterations = min(max(settings.iterations // 10, 200), settings.iterations)
    qat = options.get("qat_iterations")
    if qat is not None:
        qat = min(qat, max(qat // 10, 1))
        if settings.training_recipe.qat_share is not None:  # one pass: QAT within the pilot's iterations
            qat = min(qat, iterations - 1)
    recipe = settings.training_recipe.with_changes(rdo_sweeps=min(settings.training_recipe.rdo_sweeps,
                                                                  PILOT_RDO_SWEEPS))
    return dict(options, iterations=iterations, qat_iterations=qat, recipe=recipe, progress=None)


def _possible_count(n, bpp, pixels):
    """``n`` when it is a possible Gaussian count for ``pixels`` pixels, else :class:`GIError`."""
    if n < 1 or n > pixels:
        raise GIError(f"{bpp} bpp needs about {n} Gaussians, outside 1..{pixels} for this image")
    return n


def compress_to_psnr(image, target_psnr, *, max_tries=6, **options):
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


def encode(image, n_gaussians=None, bpp=None, psnr=None, **options):
    """``(bytes, EncodeReport)`` with ``n_gaussians`` (:func:`compress`), at ``bpp`` (:func:`compress_to_rate`)
    or at ``psnr`` dB (:func:`compress_to_psnr`).

    Exactly one of the three is given; ``options`` are :func:`compress`'s.
    """
    if sum(value is not None for value in (n_gaussians, bpp, psnr)) != 1:
        raise GIError("give exactly one of a number of Gaussians, a rate in bpp and a PSNR in dB")
    if bpp is not None:
        return compress_to_rate(image, bpp, **options)
    if psnr is not None:
        return compress_to_psnr(image, psnr, **options)
    return compress(image, n_gaussians, return_report=True, **options)
