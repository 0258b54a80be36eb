"""Fitting an image: the representation phase of training (docs/algorithm.md §2-§5).

:func:`fit` turns its options into :class:`FitSettings`, builds the phase
(:func:`representation_phase`: the recipe's iterations, learning rates and
schedule, the densification strategy, the parameter map and the stopping
rule; :mod:`gi_numba.recipes`) and runs it with the one training loop,
:func:`gi_numba.training.train`. One iteration is

1. fused forward + MSE loss + backward on the current Gaussians
   (:meth:`~gi_numba.raster.cpu_pipeline.CpuRasterizer.loss_and_gradients`);
2. remember the parameters if this is the best PSNR so far (§4);
3. one Adam step with the scheduled learning rate(s) (§4);
4. pruning and growth when the schedule says so (§5);
5. stop early if a stopping rule says so (time, PSNR, convergence).

At the end (or on Ctrl-C) the best parameters are returned as a
:class:`~gi_numba.model.GaussianImage`. On the ``cuda`` backend a fit whose
map is the identity keeps its whole state on the GPU
(:mod:`gi_numba.gpu_train`); any other map (the codec's sigmoid colours, the
GaussianImage baselines) trains host arrays and rasterises on the GPU.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import GIError
from .image_io import load_image, to_float_rgb
from .limits import check_number
from .maps import IdentityMap, ParameterMap, SigmoidColourMap
from .model import GaussianImage
from .optim import StepDecay
from .parameterisation import DIRECT, parameterisation
from .recipes import DEFAULT_RECIPE, PAPER, PhaseRecipe, Recipe, recipe_named
from .strategy import DensifyStrategy, Strategy
from .training import FitDiverged, Phase, Progress, StopRule, raise_if_diverged, run_phase

__all__ = ["FitDiverged", "FitSettings", "Progress", "as_target", "fit", "fit_target", "learning_rate_schedule",
           "representation_phase"]


@dataclass
class FitSettings:
    """Options of one fit.

    ``recipe`` (:mod:`gi_numba.recipes`) defaults to ``"fast"`` for GI++ and
    ``"paper"`` for the GaussianImage baselines; ``iterations`` to the
    recipe's. ``lr``, ``densify`` and ``caf`` default to the recipe's and the
    model's (0.018 in the paper recipe, densification and CAF on for GI++;
    Adan at 0.001, both off, for GaussianImage). ``lr_decay_every`` replaces
    the recipe's schedule by the paper's halving every that many iterations.
    ``seconds`` and ``target_psnr`` stop the fit early once that much time has
    passed or the training PSNR reaches it (:class:`~gi_numba.training.StopRule`).
    ``pixels`` (the image's, when known) lets a recipe lengthen a dense fit
    asked for no iterations (:meth:`~gi_numba.recipes.PhaseRecipe.fit_iterations`).
    """

    n_gaussians: int
    iterations: int | None = None
    seed: int = 0
    lr: float | None = None
    lr_decay_every: int | None = None
    densify: bool | None = None
    caf: bool | None = None
    backend: str = "cpu"
    sigmoid_colours: bool = False
    model: str = "gi++"
    recipe: object = None
    seconds: float | None = None
    target_psnr: float | None = None
    pixels: int | None = None

    def __post_init__(self):
        """Fill in the recipe's and the model's defaults; :class:`GIError` for an option out of range."""
        model = parameterisation(self.model)
        if self.recipe is None:
            self.recipe = DEFAULT_RECIPE if model is DIRECT else PAPER.name
        recipe = recipe_named(self.recipe)
        if recipe != PAPER and model is not DIRECT:
            raise GIError(f"the {recipe.name} recipe is tuned for gi++; fit {model.name} with the paper recipe")
        self.recipe, self._recipe = recipe.name, recipe
        self.n_gaussians = check_number(self.n_gaussians, "the number of Gaussians", 1, integer=True)
        if self.iterations is None:
            area = None if self.pixels is None else self.pixels / self.n_gaussians
            self.iterations = self.phase_recipe.fit_iterations(area)
        self.iterations = check_number(self.iterations, "iterations", 1, integer=True)
        self.seed = check_number(self.seed, "the seed", 0, 2 ** 63 - 1, integer=True)
        default_lr = self.phase_recipe.lr if model is DIRECT else model.lr
        self.lr = check_number(default_lr if self.lr is None else self.lr, "the learning rate", 0, above=True)
        if self.densify is None:
            self.densify = model.densify
        if self.caf is None:
            self.caf = model.caf
        if self.lr_decay_every is not None:
            self.lr_decay_every = check_number(self.lr_decay_every, "the learning-rate decay interval", 1,
                                               integer=True)
        if self.seconds is not None:
            self.seconds = check_number(self.seconds, "the time budget (seconds)", 0, above=True)
        if self.target_psnr is not None:
            self.target_psnr = check_number(self.target_psnr, "the target PSNR", 0, 200, above=True)

    @property
    def training_recipe(self) -> Recipe:
        """The :class:`~gi_numba.recipes.Recipe` (``recipe`` may also be given as one, e.g. by benchmarks)."""
        return self._recipe

    @property
    def phase_recipe(self) -> PhaseRecipe:
        """The :class:`~gi_numba.recipes.PhaseRecipe` this fit runs: the recipe's ``fit``, or with
        ``sigmoid_colours`` (colours trained as logits) its encode's ``warmup``."""
        return self._recipe.encode.warmup if self.sigmoid_colours else self._recipe.fit


def fit(image, n_gaussians, iterations=None, seed=0, *, recipe=None, seconds=None, psnr=None, model="gi++",
        densify=None, caf=None, lr=None, lr_decay_every=None, backend="cpu", sigmoid_colours=False,
        progress=None, progress_every=100, snapshots=None, max_pixels=None) -> GaussianImage:
    """Fit ``n_gaussians`` Gaussians to ``image`` and return the best :class:`GaussianImage`.

    ``image`` is a path or an ``(H, W)``/``(H, W, C)`` array (uint8, uint16, or
    float in ``[0, 1]``). ``recipe`` is ``"fast"`` (the default for GI++: the
    paper's quality in a fraction of its time, stopping once converged) or
    ``"paper"`` (docs/algorithm.md §4-§5 exactly, 50 000 iterations); see
    :mod:`gi_numba.recipes`. ``iterations`` defaults to the recipe's;
    ``seconds`` stops after that much wall-clock time (the result then
    depends on the machine) and ``psnr`` once the training PSNR reaches it.
    ``progress`` is called with a :class:`Progress` every
    ``progress_every`` iterations. Ctrl-C stops early and returns the best
    state so far (``model.stats["interrupted"]`` is then true).
    ``sigmoid_colours`` trains colours as logits drawn through a sigmoid (the
    compression warm-up, docs/algorithm.md §6); the model then holds the logits.
    ``snapshots`` is a :class:`~gi_numba.snapshots.Snapshots` that draws the
    fit at the iterations it chooses. ``model`` picks the parameterisation:
    ``"gi++"`` (default), or the GaussianImage baselines ``"gi-cholesky"`` and
    ``"gi-rs"`` (:mod:`gi_numba.parameterisation`; these train with Adan at lr
    0.001, with the paper recipe). ``densify`` and ``caf`` default to the model's own choice: on for
    GI++, off for GaussianImage; either can be switched on or off for any
    model (the paper's ablation). Whatever the model, the returned
    :class:`GaussianImage` holds the drawn parameters. An image file larger
    than ``max_pixels`` (:mod:`gi_numba.limits`) is refused before it is decoded.
    """
    target, channels = as_target(image, max_pixels)
    settings = FitSettings(n_gaussians=n_gaussians, iterations=iterations, seed=seed, lr=lr,
                           lr_decay_every=lr_decay_every, densify=densify, caf=caf, backend=backend,
                           sigmoid_colours=sigmoid_colours, model=model, recipe=recipe, seconds=seconds,
                           target_psnr=psnr, pixels=target.shape[0] * target.shape[1])
    return fit_target(target, channels, settings, progress, progress_every, snapshots)


def as_target(image, max_pixels=None) -> tuple:
    """``(target (H, W, 3) float32, source channel count)`` from a path, an image file's bytes or an array."""
    if isinstance(image, (str, Path, bytes)):
        target, info = load_image(image, max_pixels)
        return target, info.channels
    target, info = to_float_rgb(image)
    return target, info.channels


def _check(settings, height, width):
    if settings.n_gaussians > height * width:
        raise GIError(f"{settings.n_gaussians} Gaussians is more than the {height * width} pixels "
                      f"of this {width}x{height} image")


def representation_phase(settings, height, width, name="fit") -> Phase:
    """The :class:`~gi_numba.training.Phase` a fit with ``settings`` runs on a ``height x width`` image.

    Its learning rates, schedule, growth pace and early stop are the recipe's
    (:mod:`gi_numba.recipes`).
    """
    model = parameterisation(settings.model)
    recipe = settings.phase_recipe
    iterations = settings.iterations
    if settings.densify:
        strategy = DensifyStrategy(settings.n_gaussians, height, width, caf=settings.caf, parameterisation=model,
                                   iterations=iterations, grow_every=recipe.grow_every(iterations),
                                   growth_until=int(recipe.growth_fraction * iterations),
                                   content_aware=recipe.content_aware_start,
                                   residual_colours=recipe.residual_colours,
                                   refill_until=recipe.refill_iteration(iterations))
        last_growth = strategy.last_growth
    else:
        strategy = Strategy(settings.n_gaussians, height, width, caf=settings.caf, parameterisation=model)
        last_growth = 0
    plateau = None if recipe.plateau is None else max(int(recipe.plateau * iterations), 1)
    stop = StopRule(seconds=settings.seconds, psnr=settings.target_psnr, plateau=plateau, min_gain=recipe.min_gain,
                    after=last_growth)
    rates, schedule = learning_rate_schedule(settings, height, width)
    return Phase(name, iterations, rates, schedule, strategy,
                 _mapping(settings, model, height, width), stop)


def learning_rate_schedule(settings, height, width) -> tuple:
    """``(base learning rate(s), schedule)`` of a fit with ``settings`` on a ``height x width`` image: the
    recipe's (:meth:`~gi_numba.recipes.PhaseRecipe.learning_rates`), or the paper's halving every
    ``settings.lr_decay_every`` iterations if asked for. Iteration ``i`` trains at ``schedule(rates, i)``."""
    recipe = settings.phase_recipe
    schedule = (StepDecay(settings.lr_decay_every) if settings.lr_decay_every is not None
                else recipe.schedule_for(settings.iterations))
    rates = recipe.learning_rates(settings.lr, height * width / settings.n_gaussians)
    return rates, schedule


def fit_target(target, channels, settings, progress=None, progress_every=100, snapshots=None,
               name="fit") -> GaussianImage:
    """Fit an already loaded ``(H, W, 3)`` target with ``settings``; the phase is called ``name`` in progress."""
    height, width = target.shape[:2]
    _check(settings, height, width)
    rng = np.random.default_rng(settings.seed)
    phase = representation_phase(settings, height, width, name)
    start = phase.strategy.initial_state(rng, target)
    result = run_phase(phase, start, target, settings.backend, rng, progress, progress_every, snapshots)
    fitted = None
    if result.params is not None:
        stats = dict(best_iteration=result.best_iteration, iterations_run=result.iterations_run,
                     seconds=result.seconds, interrupted=result.interrupted, stopped=result.stopped)
        fitted = GaussianImage(params=phase.strategy.parameterisation.draw(result.params, height, width),
                               lam=result.lam, height=height, width=width, channels=channels,
                               iteration=result.best_iteration, seed=settings.seed, settings=asdict(settings),
                               psnr=result.psnr, stats=stats)
    raise_if_diverged(result, fitted)
    if fitted is None:
        raise KeyboardInterrupt
    return fitted


def _mapping(settings, model, height, width):
    """The map from trained to drawn numbers: sigmoid colours (compression warm-up), a baseline's, or none."""
    if settings.phase_recipe.sigmoid_colours:
        if model is not DIRECT:
            raise GIError(f"sigmoid colours (compression) need the gi++ model, not {model.name}")
        return SigmoidColourMap()
    return IdentityMap() if model is DIRECT else ParameterMap(model, height, width)
