"""The encoder: an image to a ``.gi`` file with ``N`` Gaussians (docs/algorithm.md §6; docs/recipes.md).

:func:`compress` follows the paper's Figure 2, read top to bottom:

1. the plan: every choice of the encode resolved once from its options and
   recipe (:func:`plan_encode`, an :class:`EncodePlan`);
2. warm-up: a representation fit with sigmoid colours (§6.1);
3. the rate weight ``lambda`` of the loss ``D + lambda R`` (:func:`rate_weight`);
4. quantisation-aware training at each candidate bit depth (§6.2,
   :func:`qat_phase`): growth paused, pruning kept, the rasteriser drawing
   de-quantised attributes (:class:`~gi_numba.quantize.QuantizedMap`),
   keeping the state of the lowest loss; then quantisation (§6.3);
5. of the candidates, the codes of the lowest ``D + lambda R``
   (:func:`rate_distortion_cost`);
6. rate-distortion optimised quantisation of those codes (:mod:`gi_numba.rdo`);
7. the file (:func:`gi_numba.bitstream.write`) and its report, measured on
   what the encoder holds: the codes it wrote draw exactly what a decoder draws.
"""

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from . import bitstream
from .coding import ROLES
from .decoder import model_of_codes
from .errors import GIError
from .fit import FitSettings, as_target, fit_target, learning_rate_schedule
from .interrupt import catching_sigint, requested
from .limits import check_number
from .metrics import ms_ssim, psnr
from .optim import Constant
from .quantize import QuantizedMap, initial_quantizers, quantize
from .rate import RateTerm
from .rdo import optimise_codes
from .strategy import PruneStrategy, TrainState
from .training import Phase, raise_if_diverged, run_phase


@dataclass
class EncodeReport:
    """Facts about one encoding, measured on the written bytes and what they decode to."""

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


@dataclass(frozen=True)
class EncodePlan:
    """Every choice of one encode, resolved from its options and recipe before anything runs.

    ``warmup`` are the warm-up fit's settings (its recipe is the encode's);
    ``qat_iterations`` follow it (0: none); ``version`` is the ``.gi`` format
    written, whose coding QAT learns; ``depths`` are the bit depths QAT tries
    (``bits`` if asked for, else the recipe's candidates); ``lmbda`` is the
    asked-for rate weight (``None``: the recipe's, :func:`rate_weight`);
    RDOQ runs ``rdo_sweeps`` at ``rdo_lambda_scale`` times QAT's ``lambda``.
    """

    warmup: FitSettings
    qat_iterations: int
    version: int
    depths: tuple
    bits: dict | None
    lmbda: float | None
    rdo_sweeps: int
    rdo_lambda_scale: float


def compress(image, n_gaussians: int, iterations=None, qat_iterations=None, seed=0, *, recipe=None, bits=None,
             lr=None, lmbda=None, backend="cpu", progress=None, progress_every=100, return_report=False,
             max_pixels=None) -> bytes | tuple:
    """Encode an image with ``n_gaussians`` Gaussians into ``.gi`` bytes.

    The ``recipe`` (:mod:`gi_numba.recipes`) says how the ``iterations``
    (default: its own) are spent (:meth:`~gi_numba.recipes.EncodeRecipe.encode_phases`):
    ``"paper"`` (docs/algorithm.md §6 exactly) fits for ``iterations`` and then runs
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
    plan = plan_encode(n_gaussians, iterations, qat_iterations, seed, recipe, lr, backend, bits, lmbda)
    with catching_sigint():
        warm = fit_target(target, channels, plan.warmup, progress, progress_every, name="warm-up")
        codes, interrupted, lmbda = encode_warm(warm, target, plan, progress, progress_every)
    codes = codes.sorted_by_position()
    data, streams = bitstream.write(codes, height, width, channels)
    if not return_report:
        return data
    decoded = model_of_codes(codes, height, width, channels).render(max_pixels=max_pixels)
    report = EncodeReport(len(data), 8.0 * len(data) / (height * width), psnr(decoded, target),
                          ms_ssim(decoded, target), codes.n_gaussians, time.perf_counter() - start, streams,
                          interrupted, lmbda=lmbda)
    return data, report


def plan_encode(n_gaussians, iterations=None, qat_iterations=None, seed=0, recipe=None, lr=None, backend="cpu",
                bits=None, lmbda=None) -> EncodePlan:
    """The :class:`EncodePlan` of :func:`compress`'s options; :class:`GIError` for one out of range."""
    settings, qat_iterations = encode_settings(n_gaussians, iterations, qat_iterations, seed, recipe, lr, backend)
    _check_bits(bits)
    if lmbda is not None:
        lmbda = check_number(lmbda, "the rate weight lambda", 0)
    encode = settings.training_recipe.encode
    return EncodePlan(settings, qat_iterations, encode.file_version, tuple(depth_candidates(encode, bits)), bits,
                      lmbda, encode.rdo_sweeps, encode.rdo_lambda_scale)


def encode_settings(n_gaussians, iterations=None, qat_iterations=None, seed=0, recipe=None, lr=None,
                    backend="cpu") -> tuple:
    """``(FitSettings of the warm-up, QAT iterations)`` of an encode (the recipe's ``encode_phases``)."""
    settings = FitSettings(n_gaussians, iterations=iterations, seed=seed, lr=lr, backend=backend,
                           sigmoid_colours=True, recipe=recipe)
    if qat_iterations is not None:
        qat_iterations = check_number(qat_iterations, "QAT iterations", 0, integer=True)
    warm_iterations, qat_iterations = settings.training_recipe.encode.encode_phases(settings.iterations,
                                                                                    qat_iterations)
    return replace(settings, iterations=warm_iterations, recipe=settings.training_recipe), qat_iterations


def encode_warm(warm, target, plan: EncodePlan, progress=None, progress_every=100) -> tuple:
    """``(codes, interrupted, lambda)`` of an encode from its warm-up model ``warm`` (steps 3-6 above).

    No QAT runs if the plan has none or the warm-up was interrupted (then
    ``lambda`` is 0). Without asked-for ``bits`` QAT runs once at each of the
    plan's depths and the codes of the lowest ``D + lambda R`` are kept
    (docs/recipes.md); RDOQ then moves them to codes of lower
    ``D + lambda' R`` at ``lambda' = rdo_lambda_scale x lambda``.
    """
    if warm.stats["interrupted"] or plan.qat_iterations == 0:
        quantizers = initial_quantizers(warm.params, warm.lam, plan.bits, plan.version)
        return quantize(warm.params, warm.lam, quantizers), warm.stats["interrupted"], 0.0
    lmbda = rate_weight(warm, target, plan)
    rates, schedule = learning_rate_schedule(plan.warmup, warm.height, warm.width)
    final_lr = schedule(rates, plan.warmup.iterations)
    best_cost, best_codes = math.inf, None
    for depths in plan.depths:
        name = "QAT" if len(plan.depths) == 1 else f"QAT ({depth_label(depths, plan.version)} bits)"
        phase = qat_phase(warm, plan.qat_iterations, final_lr, depths, plan.version, lmbda, name=name)
        params, lam, quantizers, interrupted = _quantization_aware_training(
            warm, target, phase, plan.warmup.backend, np.random.default_rng(plan.warmup.seed), progress,
            progress_every)
        codes = quantize(params, lam, quantizers)
        cost = rate_distortion_cost(codes, target, lmbda, plan.warmup.backend) if len(plan.depths) > 1 else 0.0
        if best_codes is None or cost < best_cost:
            best_cost, best_codes = cost, codes
        if interrupted:
            break
    if plan.rdo_sweeps and not interrupted:
        best_codes = optimise_codes(best_codes, target, plan.rdo_lambda_scale * lmbda, plan.rdo_sweeps, progress)
        interrupted = requested()
    return best_codes, interrupted, lmbda


def rate_weight(warm, target, plan: EncodePlan) -> float:
    """The ``lambda`` of an encode's quantisation-aware training: the plan's if asked for, else the recipe's.

    A recipe's ``rate_slope`` ``k`` sets ``lambda = k D / R`` from the
    warm-up's post-training quantisation (its MSE ``D`` and estimated bpp
    ``R``): along the curve that the Gaussian count traces, PSNR gains about
    3 dB per doubling of the rate, so the curve's slope ``-dD/dR`` is about
    ``D / R`` and ``k = 1`` trades the two at that slope (docs/recipes.md).
    """
    if plan.lmbda is not None:
        return plan.lmbda
    slope = plan.warmup.training_recipe.encode.rate_slope
    if slope is None or warm.n_gaussians == 0:
        return 0.0
    codes = quantize(warm.params, warm.lam, initial_quantizers(warm.params, warm.lam, plan.bits, plan.version))
    render = model_of_codes(codes, warm.height, warm.width).render(backend=plan.warmup.backend)
    mse = float(np.mean((render - target) ** 2))
    bpp = bitstream.estimated_file_bits(bitstream.estimated_streams(codes)) / (warm.height * warm.width)
    return slope * mse / bpp


def depth_candidates(encode, bits=None) -> list:
    """The bit depths an encode's QAT tries: ``bits`` if asked for, else the defaults and the
    :class:`~gi_numba.recipes.EncodeRecipe`'s choices."""
    if bits:
        return [bits]
    return [None] + [dict(choice) for choice in encode.depth_choices]


def depth_label(bits, version) -> str:
    """``position/variance/covariance/colour`` bits of a file of ``version`` with depths ``bits``, e.g. ``12/6/6/6``."""
    defaults = bitstream.format_of(version).coding.default_bits
    return "/".join(str(depth) for depth in dict(defaults, **(bits or {})).values())


def rate_distortion_cost(codes, target, lmbda, backend="cpu") -> float:
    """``D + lambda R`` of the file that ``codes`` make: its decoded MSE plus ``lambda`` times its real bpp."""
    height, width = target.shape[:2]
    data, _ = bitstream.write(codes, height, width, 3)
    decoded = model_of_codes(codes, height, width).render(backend=backend)
    return float(np.mean((decoded - target) ** 2)) + lmbda * 8.0 * len(data) / (height * width)


def qat_phase(warm, iterations, lr, bits=None, version=1, lmbda=0.0, name="QAT") -> Phase:
    """Quantisation-aware training from the warm-up model ``warm`` (docs/algorithm.md §6.2) as a phase.

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
        if name not in ROLES:
            raise GIError(f"unknown attribute {name!r} in bit depths")
        check_number(depth, f"the bit depth of {name}", 1, 16, integer=True)


def _quantization_aware_training(warm, target, phase, backend, rng, progress, progress_every):
    """Run the QAT ``phase`` from ``warm``; returns the best ``(params, lam, quantizers, interrupted)``."""
    start = TrainState.fresh(warm.params.copy(), warm.lam.copy())
    result = run_phase(phase, start, target, backend, rng, progress, progress_every)
    raise_if_diverged(result, None)
    if result.params is None:
        raise KeyboardInterrupt
    return result.params, result.lam, result.extra, result.interrupted
