"""The fitting loop: render, loss, gradients, Adam, densification (ALGORITHM.md §2-§5).

One iteration is

1. fused forward + MSE loss + backward on the current Gaussians
   (:meth:`~gi_numba.raster.pipeline.CpuRasterizer.loss_and_gradients`);
2. remember the parameters if this is the best PSNR so far (§4);
3. one Adam step with the step-decayed learning rate (§4);
4. pruning and growth when the schedule says so (§5).

At the end (or on Ctrl-C) the best parameters are returned as a
:class:`~gi_numba.model.GaussianImage`. On the ``cuda`` backend a
representation fit runs the same loop with everything on the GPU
(:mod:`gi_numba.gpu_train`).
"""

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .defaults import ITERATIONS, LR_DECAY_FRACTION
from .errors import GIError
from .image_io import load_image, to_float_rgb
from .interrupt import interruptible_range
from .limits import check_number
from .metrics import psnr_from_mse
from .model import GaussianImage
from .optim import step_decay
from .layout import COLOUR
from .parameterisation import DIRECT, parameterisation, sigmoid
from .raster import make_rasterizer
from .strategy import DensifyStrategy
from .strategy.densify import largest_error_pixels


@dataclass
class FitSettings:
    """Options of one fit.

    ``lr``, ``densify`` and ``caf`` default to the model's (0.018, on, on for
    GI++; 0.001, off, off for GaussianImage) and ``lr_decay_every`` to
    ``0.4 * iterations`` (20 000 of 50 000).
    """

    n_gaussians: int
    iterations: int = ITERATIONS
    seed: int = 0
    lr: float | None = None
    lr_decay_every: int | None = None
    densify: bool | None = None
    caf: bool | None = None
    backend: str = "cpu"
    sigmoid_colours: bool = False
    model: str = "gi++"

    def __post_init__(self):
        """Fill in the model's defaults; :class:`GIError` for an option out of range, before any work."""
        model = parameterisation(self.model)
        self.n_gaussians = check_number(self.n_gaussians, "the number of Gaussians", 1, integer=True)
        self.iterations = check_number(self.iterations, "iterations", 1, integer=True)
        self.seed = check_number(self.seed, "the seed", 0, 2 ** 63 - 1, integer=True)
        self.lr = check_number(model.lr if self.lr is None else self.lr, "the learning rate", 0, above=True)
        if self.densify is None:
            self.densify = model.densify
        if self.caf is None:
            self.caf = model.caf
        if self.lr_decay_every is None:
            self.lr_decay_every = max(round(LR_DECAY_FRACTION * self.iterations), 1)
        self.lr_decay_every = check_number(self.lr_decay_every, "the learning-rate decay interval", 1,
                                           integer=True)


@dataclass
class Progress:
    """A snapshot handed to the progress callback."""

    iteration: int
    iterations: int
    psnr: float
    best_psnr: float
    n_gaussians: int
    elapsed: float
    warmup: float = 0.0  # seconds of the first iteration (includes compiling the kernels)
    phase: str = "fit"   # what is training: "fit", or an encoder's "warm-up" and "QAT"

    @property
    def eta(self):
        """Seconds left at the average speed since the first iteration."""
        steady = (self.elapsed - self.warmup) / max(self.iteration - 1, 1)
        return steady * (self.iterations - self.iteration)


class FitDiverged(GIError):
    """The loss became NaN or infinite; ``model`` holds the best state before that (or ``None``)."""

    def __init__(self, message, model):
        super().__init__(message)
        self.model = model


def fit(image, n_gaussians, iterations=ITERATIONS, seed=0, *, model="gi++", densify=None, caf=None, lr=None,
        lr_decay_every=None, backend="cpu", sigmoid_colours=False, progress=None, progress_every=100,
        snapshots=None, max_pixels=None):
    """Fit ``n_gaussians`` Gaussians to ``image`` and return the best :class:`GaussianImage`.

    ``image`` is a path or an ``(H, W)``/``(H, W, C)`` array (uint8, uint16, or
    float in ``[0, 1]``). ``progress`` is called with a :class:`Progress` every
    ``progress_every`` iterations. Ctrl-C stops early and returns the best
    state so far (``model.stats["interrupted"]`` is then true).
    ``sigmoid_colours`` trains colours as logits drawn through a sigmoid (the
    compression warm-up, ALGORITHM.md §6); the model then holds the logits.
    ``snapshots`` is a :class:`~gi_numba.snapshots.Snapshots` that draws the
    fit at the iterations it chooses. ``model`` picks the parameterisation:
    ``"gi++"`` (default), or the GaussianImage baselines ``"gi-cholesky"`` and
    ``"gi-rs"`` (:mod:`gi_numba.parameterisation`; these train with Adan at lr
    0.001). ``densify`` and ``caf`` default to the model's own choice: on for
    GI++, off for GaussianImage; either can be switched on or off for any
    model (the paper's ablation). Whatever the model, the returned
    :class:`GaussianImage` holds the drawn parameters. An image file larger
    than ``max_pixels`` (:mod:`gi_numba.limits`) is refused before it is decoded.
    """
    target, channels = as_target(image, max_pixels)
    settings = FitSettings(n_gaussians=n_gaussians, iterations=iterations, seed=seed, lr=lr,
                           lr_decay_every=lr_decay_every, densify=densify, caf=caf, backend=backend,
                           sigmoid_colours=sigmoid_colours, model=model)
    _check(settings, *target.shape[:2])
    return _run(target, channels, settings, progress, max(int(progress_every), 1), snapshots)


def as_target(image, max_pixels=None):
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


class IdentityMap:
    """Representation mode: the rasteriser draws the trained parameters as they are."""

    def forward(self, params, lam):
        return params, lam

    def backward(self, grads):
        return grads

    def step(self, iteration):
        pass

    def snapshot(self):
        return None


class ParameterMap(IdentityMap):
    """A GaussianImage baseline: draws its trained numbers as means and covariances (:mod:`.parameterisation`)."""

    def __init__(self, model, height, width):
        self.model, self.height, self.width = model, height, width

    def forward(self, params, lam):
        self._params = params
        return self.model.draw(params, self.height, self.width), lam

    def backward(self, grads):
        return self.model.backward(self._params, grads, self.height, self.width)


class SigmoidColourMap(IdentityMap):
    """Compression warm-up: colours are trained as logits and drawn as ``sigmoid(logit)`` (ALGORITHM.md §1)."""

    def forward(self, params, lam):
        drawn = params.copy()
        self._colours = sigmoid(params[:, COLOUR])
        drawn[:, COLOUR] = self._colours
        return drawn, lam

    def backward(self, grads):
        grads[:, COLOUR] *= self._colours * (1.0 - self._colours)
        return grads


@dataclass
class TrainResult:
    """What :func:`train` returns: the best state seen and facts about the run."""

    psnr: float
    params: np.ndarray
    lam: np.ndarray
    extra: object  # the map's snapshot at the best state (quantiser parameters), or None
    best_iteration: int
    iterations_run: int
    seconds: float
    interrupted: bool
    diverged: bool


def train(rasterizer, target, state, strategy, iterations, lr, lr_decay_every, mapping=None, rng=None,
          progress=None, progress_every=100, snapshots=None):
    """The optimisation loop shared by fitting and quantisation-aware training.

    Each iteration draws ``mapping.forward(params)``, takes the loss gradient
    back through ``mapping.backward``, remembers the best-PSNR state, steps
    Adam (and the map's own parameters), then lets ``strategy`` prune or grow.
    Ctrl-C and a NaN loss end the loop; the best state is kept either way.
    ``snapshots`` (optional) sees the drawn Gaussians of the iterations it wants.
    """
    mapping = mapping or IdentityMap()
    n_values = 3 * rasterizer.height * rasterizer.width
    best = (-math.inf, None, None, None, 0)
    iteration, interrupted, diverged, warmup = 0, False, False, 0.0
    start = time.perf_counter()
    try:
        for iteration in interruptible_range(iterations):
            drawn, drawn_lam = mapping.forward(state.params, state.lam)
            sse, grads = rasterizer.loss_and_gradients(drawn, drawn_lam)
            if snapshots is not None and snapshots.wants(iteration):
                snapshots(iteration, drawn, drawn_lam)
            if not (math.isfinite(sse) and np.isfinite(grads).all() and np.isfinite(state.params).all()):
                diverged = True
                break
            grads = mapping.backward(grads)
            psnr = psnr_from_mse(sse / n_values)
            if psnr > best[0]:
                best = (psnr, state.params.copy(), state.lam.copy(), mapping.snapshot(), iteration)
            state.optimizer.step(state.params, grads, step_decay(lr, iteration - 1, lr_decay_every))
            mapping.step(iteration)
            strategy.after_step(state, iteration, _error_ranking(rasterizer, mapping, state, target), rng)
            if iteration == 1:
                warmup = time.perf_counter() - start
            if progress is not None and (iteration % progress_every == 0 or iteration == iterations):
                progress(Progress(iteration, iterations, psnr, best[0], state.n_gaussians,
                                  time.perf_counter() - start, warmup))
    except KeyboardInterrupt:
        interrupted = True
    interrupted = interrupted or iteration < iterations and not diverged
    return TrainResult(best[0], best[1], best[2], best[3], best[4], iteration - (1 if diverged else 0),
                       time.perf_counter() - start, interrupted, diverged)



def _error_ranking(rasterizer, mapping, state, target):
    """``k -> (rows, cols)`` of the ``k`` worst pixels of the current render (rendered only when asked)."""
    def largest_errors(k):
        render = rasterizer.render(*mapping.forward(state.params, state.lam)).transpose(1, 2, 0)
        return largest_error_pixels(render, target, k)
    return largest_errors


def raise_if_diverged(result, model):
    """Turn a diverged :class:`TrainResult` into :class:`FitDiverged` carrying the best model."""
    if not result.diverged:
        return
    kept = (f"kept the best state (iteration {result.best_iteration}, PSNR {result.psnr:.2f} dB)"
            if model is not None else "no good state to keep")
    raise FitDiverged(f"fit diverged: the loss became NaN at iteration {result.iterations_run + 1}; {kept}", model)


def _run(target, channels, settings, progress, progress_every, snapshots):
    height, width = target.shape[:2]
    rng = np.random.default_rng(settings.seed)
    model = parameterisation(settings.model)
    strategy = DensifyStrategy(settings.n_gaussians, height, width, iterations=settings.iterations,
                               densify=settings.densify, caf=settings.caf, parameterisation=model)
    state = strategy.initial_state(rng)
    rasterizer = make_rasterizer(settings.backend, height, width)
    rasterizer.set_target(target.transpose(2, 0, 1))
    if snapshots is not None:
        snapshots.start(target, settings.iterations)
    try:
        if rasterizer.name == "cuda" and not settings.sigmoid_colours and model is DIRECT:
            from .gpu_train import train_on_device
            result = train_on_device(rasterizer, state, strategy, settings.iterations, settings.lr,
                                     settings.lr_decay_every, rng, progress, progress_every, snapshots)
        else:
            mapping = _mapping(settings, model, height, width)
            result = train(rasterizer, target, state, strategy, settings.iterations, settings.lr,
                           settings.lr_decay_every, mapping, rng, progress, progress_every, snapshots)
    finally:
        if snapshots is not None:
            snapshots.finish()
    fitted = None
    if result.params is not None:
        stats = dict(best_iteration=result.best_iteration, iterations_run=result.iterations_run,
                     seconds=result.seconds, interrupted=result.interrupted)
        fitted = GaussianImage(params=model.draw(result.params, height, width), lam=result.lam, height=height,
                               width=width, channels=channels, iteration=result.best_iteration, seed=settings.seed,
                               settings=asdict(settings), psnr=result.psnr, stats=stats)
    raise_if_diverged(result, fitted)
    if fitted is None:
        raise KeyboardInterrupt
    return fitted


def _mapping(settings, model, height, width):
    """The map from trained to drawn numbers: sigmoid colours (compression warm-up), a baseline's, or none."""
    if settings.sigmoid_colours:
        if model is not DIRECT:
            raise GIError(f"sigmoid colours (compression) need the gi++ model, not {model.name}")
        return SigmoidColourMap()
    return IdentityMap() if model is DIRECT else ParameterMap(model, height, width)
