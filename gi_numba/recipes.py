"""Training recipes: the paper's schedule, and the project's faster default (docs/recipes.md).

A recipe says how a GaussianImage++ fit trains, given its budget of ``N``
Gaussians: how many iterations when none are asked for, the learning rate of
each attribute and its schedule, how densification is paced, and when the fit
may stop early. :data:`PAPER` is docs/algorithm.md §4-§5 exactly (same seed, same
bits as before recipes existed). :data:`FAST` is the best we measured for a
user waiting at the terminal (benchmarks/bench_recipes.py, docs/recipes.md).
"""

import math
from dataclasses import dataclass, replace

import numpy as np

from .defaults import ITERATIONS, LR, LR_DECAY_FRACTION, QAT_FRACTION
from .errors import GIError
from .layout import COLOUR, COV, MEAN, N_PARAMS
from .optim import CosineDecay, StepDecay


@dataclass(frozen=True)
class PhaseRecipe:
    """How one phase trains from a fresh start: a representation fit, or an encode's warm-up.

    ``iterations`` is the phase's length when none is asked for; with
    ``max_stretch`` (and ``reference_area``) a phase denser than
    ``reference_area`` pixels per Gaussian runs longer, ``iterations`` times
    ``sqrt(reference_area / area)`` up to ``max_stretch`` times
    (:meth:`fit_iterations`).
    ``lr`` is Adam's learning rate; ``lr_scale`` multiplies it per attribute
    ``(position, covariance, colour)`` (``None``: one rate for all, as the
    paper). With ``reference_area`` (the image pixels per Gaussian at which
    ``lr_scale`` was measured), the rates follow each fit's own scale:
    positions move in pixels, so their rate is multiplied by
    ``sqrt(area / reference_area)``, and covariances in pixels², by
    ``area / reference_area``, where ``area = H W / N`` (neither factor
    above 1).
    ``schedule`` is ``"step"`` (halve every ``0.4 * iterations``,
    §4) or ``"cosine"`` (a half cosine down to ``final_lr * lr``).
    ``growth_fraction`` packs densification's ten growth steps into that
    fraction of the iterations (1: every ``iterations / 10``, §5).
    ``init`` is how the initial Gaussians start: ``"uniform"`` (§5) or
    ``"content"`` (placed by the image's gradient and sized to their
    neighbours, :func:`~gi_numba.strategy.densify.content_aware_start`).
    ``refill_until`` (a fraction of the iterations, or ``None`` as §5) has
    every pruning step before it grow back what pruning took since the last
    growth step (:meth:`~gi_numba.strategy.DensifyStrategy.refill`).
    ``plateau`` (a fraction of the iterations, or ``None``) ends a phase whose
    best PSNR gained less than ``min_gain`` dB over that many iterations, once
    the last growth step is behind it. ``grow_colour`` is how a grown
    Gaussian's trained colour starts: ``"zero"`` (§5) or ``"residual"`` (what
    the render lacks at its pixel, :meth:`~gi_numba.maps.Map.trained_colours`).
    ``colours`` is the phase's colour map: ``"direct"`` (a representation fit)
    or ``"sigmoid"`` (colours trained as logits, an encode's warm-up, §6.1;
    a logit of 0 draws mid-grey).
    """

    iterations: int = ITERATIONS
    max_stretch: float | None = None
    lr: float = LR
    lr_scale: tuple | None = None
    schedule: str = "step"
    final_lr: float = 0.05
    growth_fraction: float = 1.0
    init: str = "uniform"
    refill_until: float | None = None
    plateau: float | None = None
    min_gain: float = 0.01
    grow_colour: str = "zero"
    reference_area: float | None = None
    colours: str = "direct"

    def __post_init__(self):
        if self.schedule not in ("step", "cosine"):
            raise GIError(f"unknown learning-rate schedule {self.schedule!r}; choose step or cosine")
        if self.init not in ("uniform", "content"):
            raise GIError(f"unknown initialisation {self.init!r}; choose uniform or content")
        if self.grow_colour not in ("zero", "residual"):
            raise GIError(f"unknown colour of grown Gaussians {self.grow_colour!r}; choose zero or residual")
        if self.colours not in ("direct", "sigmoid"):
            raise GIError(f"unknown colour map {self.colours!r}; choose direct or sigmoid")

    @property
    def sigmoid_colours(self) -> bool:
        """Whether the phase trains colours as logits drawn through a sigmoid."""
        return self.colours == "sigmoid"

    @property
    def content_aware_start(self) -> bool:
        """Whether the initial Gaussians are placed and sized by the image."""
        return self.init == "content"

    @property
    def residual_colours(self) -> bool:
        """Whether grown Gaussians start at the colour the render lacks."""
        return self.grow_colour == "residual"

    def fit_iterations(self, area=None) -> int:
        """The iterations of a phase asked for none, at ``area`` pixels per Gaussian (``None``: unknown)."""
        if self.max_stretch is None or self.reference_area is None or area is None:
            return self.iterations
        stretch = min(math.sqrt(self.reference_area / area), self.max_stretch)
        return round(self.iterations * max(stretch, 1.0))

    def learning_rates(self, lr, area=None) -> float | np.ndarray:
        """The phase's learning rate from base rate ``lr``: a number, or one per parameter column ``[8]``.

        ``area`` is the fit's pixels per Gaussian (used with ``reference_area``).
        """
        if self.lr_scale is None:
            return lr
        position, covariance, colour = self.lr_scale
        if self.reference_area is not None and area is not None:
            ratio = min(area / self.reference_area, 1.0)
            position, covariance = position * math.sqrt(ratio), covariance * ratio
        rates = np.empty(N_PARAMS)
        for columns, scale in zip((MEAN, COV, COLOUR), (position, covariance, colour)):
            rates[columns] = lr * scale
        return rates

    def schedule_for(self, iterations) -> StepDecay | CosineDecay:
        """The learning-rate schedule of a phase of ``iterations`` (:mod:`gi_numba.optim`)."""
        if self.schedule == "step":
            return StepDecay(max(round(LR_DECAY_FRACTION * iterations), 1))
        return CosineDecay(iterations, self.final_lr)

    def grow_every(self, iterations) -> int:
        """Iterations between growth steps: ten of them in ``growth_fraction * iterations``."""
        return max(int(self.growth_fraction * iterations) // 10, 1)

    def refill_iteration(self, iterations) -> int | None:
        """The iteration before which pruning steps refill (``None``: never, as §5)."""
        return None if self.refill_until is None else int(self.refill_until * iterations)


@dataclass(frozen=True)
class EncodeRecipe:
    """How an encode spends its iterations and codes its file (docs/recipes.md).

    ``warmup`` is the warm-up phase (§6.1; its colours are logits).
    ``qat_share`` is how an encode splits its iterations (:meth:`encode_phases`):
    ``None`` runs quantisation-aware training for ``0.2 x iterations`` after
    a whole warm-up (§6); a fraction makes it the last part of one schedule
    of ``iterations``. ``file_version`` is the ``.gi`` format written, whose
    coding QAT learns (:data:`~gi_numba.bitstream.formats.FORMATS`; 1 is
    §6's). ``rate_slope`` ``k`` adds the file's rate to QAT's loss,
    ``D + lambda R`` at ``lambda = k D / R`` of the warm-up
    (:func:`gi_numba.encoder.rate_weight`; ``None``: distortion only, as §6).
    ``depth_choices`` are bit depths (each a tuple of ``(attribute, bits)``
    pairs over the version's defaults) that an encode asked for no depths
    also trains and writes, keeping the file of the lowest ``D + lambda R``
    (:func:`gi_numba.encoder.encode_warm`). ``rdo_sweeps`` is the most passes
    of rate-distortion optimised quantisation over the kept file's codes
    (:mod:`gi_numba.rdo`; 0: codes rounded to nearest, as §6.3), at
    ``rdo_lambda_scale`` times QAT's ``lambda``.
    """

    warmup: PhaseRecipe = PhaseRecipe(colours="sigmoid")
    qat_share: float | None = None
    file_version: int = 1
    rate_slope: float | None = None
    depth_choices: tuple = ()
    rdo_sweeps: int = 0
    rdo_lambda_scale: float = 1.0

    def encode_phases(self, iterations, qat_iterations=None) -> tuple:
        """``(warm-up, QAT)`` iterations of an encode of ``iterations`` (``qat_iterations``: asked for, or None)."""
        if self.qat_share is None:
            qat = max(int(QAT_FRACTION * iterations), 1) if qat_iterations is None else qat_iterations
            return iterations, qat
        qat = round(self.qat_share * iterations) if qat_iterations is None else qat_iterations
        if qat >= iterations:
            raise GIError(f"{qat} QAT iterations leave none of the {iterations} for the warm-up: with this "
                          f"recipe QAT is the last part of the encode's iterations")
        return iterations - qat, qat


@dataclass(frozen=True)
class Recipe:
    """A named pair: how a fit trains (``fit``) and how an encode runs (``encode``), each measured
    (docs/recipes.md). The paper's is :data:`PAPER`; the default, :data:`FAST`."""

    name: str
    fit: PhaseRecipe = PhaseRecipe()
    encode: EncodeRecipe = EncodeRecipe()

    def with_fit(self, **changes) -> "Recipe":
        """This recipe with some fields of its fit phase changed (benchmarks' ablations)."""
        return replace(self, fit=replace(self.fit, **changes))

    def with_warmup(self, **changes) -> "Recipe":
        """This recipe with some fields of its encode's warm-up phase changed."""
        return replace(self, encode=replace(self.encode, warmup=replace(self.encode.warmup, **changes)))

    def with_encode(self, **changes) -> "Recipe":
        """This recipe with some fields of its encode changed."""
        return replace(self, encode=replace(self.encode, **changes))


#: docs/algorithm.md §4-§5: lr 0.018 for everything, halved at 40% and 80% of 50 000
#: iterations; growth every 5 000 iterations; no early stop.
PAPER = Recipe("paper")

#: The project's default (docs/recipes.md has the measurements behind each field): the paper's
#: schedule shape over 20 000 iterations (a denser fit than Kodak's 79 pixels per Gaussian longer, by
#: the square root of the density ratio, at most x1.5; not an encode), from a start shaped by the
#: image (70% of the initial means drawn by the squared gradient, each Gaussian sized to its
#: neighbours; not in an encode's warm-up), with learning rates 0.15 for positions and covariances and
#: 0.025 for colours (0.05 for the logits of an encode's warm-up) at Kodak's 79 pixels per Gaussian
#: (5 000 on 768x512; denser fits move their Gaussians less: position rates with the square root of
#: the pixels per Gaussian, covariances with it), growing back what pruning takes between growth
#: steps until 95% of the iterations (not in an encode's warm-up), and stopping early if the last
#: stretch gains under 0.01 dB per 1 000 iterations; in an encode's warm-up, grown Gaussians start at
#: the colour the render lacks instead of grey, and an encode is one schedule of the same 20 000
#: iterations whose last 2 000 are quantisation-aware training, learning the coding of a version-3
#: file with the file's rate in the loss at the rate-distortion curve's slope, once at the default
#: depths and once with 11-bit positions and 5-bit variances, keeping the file of lower D + lambda R,
#: whose codes up to sixteen sweeps of rate-distortion optimised quantisation at 1.5 times that
#: lambda then move or remove.
_KODAK_AREA = 768 * 512 / 5000
FAST = Recipe(
    "fast",
    fit=PhaseRecipe(iterations=20_000, max_stretch=1.5, lr=0.1, lr_scale=(1.5, 1.5, 0.25), init="content",
                    refill_until=0.95, plateau=0.05, min_gain=0.01, reference_area=_KODAK_AREA),
    encode=EncodeRecipe(
        warmup=PhaseRecipe(iterations=20_000, lr=0.1, lr_scale=(1.5, 1.5, 0.5), plateau=0.05, min_gain=0.01,
                           grow_colour="residual", reference_area=_KODAK_AREA, colours="sigmoid"),
        qat_share=0.1, file_version=3, rate_slope=1.0, depth_choices=((("position", 11), ("variance", 5)),),
        rdo_sweeps=16, rdo_lambda_scale=1.5))

RECIPES = {recipe.name: recipe for recipe in (PAPER, FAST)}
DEFAULT_RECIPE = "fast"


def recipe_named(name) -> Recipe:
    """The :class:`Recipe` called ``name``; :class:`GIError` for an unknown one."""
    if isinstance(name, Recipe):
        return name
    try:
        return RECIPES[name]
    except KeyError:
        raise GIError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}") from None
