"""The fitting loop: render, loss, gradients, Adam, densification (ALGORITHM.md §2-§5).

One iteration is

1. fused forward + MSE loss + backward on the current Gaussians
   (:meth:`~gi_numba.raster.pipeline.CpuRasterizer.loss_and_gradients`);
2. remember the parameters if this is the best PSNR so far (§4);
3. one Adam step with the step-decayed learning rate (§4);
4. pruning and growth when the schedule says so (§5).

At the end (or on Ctrl-C) the best parameters are returned as a
:class:`~gi_numba.model.GaussianImage`.
"""

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import GIError
from .image_io import load_image, to_float_rgb
from .metrics import psnr_from_mse
from .model import GaussianImage
from .optim import step_decay
from .raster import make_rasterizer
from .strategy import DensifyStrategy


@dataclass
class FitSettings:
    """Options of one fit. ``lr_decay_every`` defaults to ``0.4 * iterations`` (20 000 of 50 000)."""

    n_gaussians: int
    iterations: int = 50_000
    seed: int = 0
    lr: float = 0.018
    lr_decay_every: int | None = None
    densify: bool = True
    caf: bool = True
    backend: str = "cpu"

    def __post_init__(self):
        if self.lr_decay_every is None:
            self.lr_decay_every = max(round(0.4 * self.iterations), 1)


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


def fit(image, n_gaussians, iterations=50_000, seed=0, *, densify=True, caf=True, lr=0.018,
        lr_decay_every=None, backend="cpu", progress=None, progress_every=100):
    """Fit ``n_gaussians`` Gaussians to ``image`` and return the best :class:`GaussianImage`.

    ``image`` is a path or an ``(H, W)``/``(H, W, C)`` array (uint8, uint16, or
    float in ``[0, 1]``). ``progress`` is called with a :class:`Progress` every
    ``progress_every`` iterations. Ctrl-C stops early and returns the best
    state so far (``model.stats["interrupted"]`` is then true).
    """
    target, channels = _target_of(image)
    settings = FitSettings(n_gaussians=n_gaussians, iterations=iterations, seed=seed, lr=lr,
                           lr_decay_every=lr_decay_every, densify=densify, caf=caf, backend=backend)
    _check(settings, *target.shape[:2])
    return _run(target, channels, settings, progress, max(int(progress_every), 1))


def _target_of(image):
    if isinstance(image, (str, Path)):
        target, info = load_image(image)
        return target, info.channels
    target, info = to_float_rgb(image)
    return target, info.channels


def _check(settings, height, width):
    if not isinstance(settings.n_gaussians, (int, np.integer)) or settings.n_gaussians < 1:
        raise GIError(f"the number of Gaussians must be a positive integer, got {settings.n_gaussians}")
    if settings.n_gaussians > height * width:
        raise GIError(f"{settings.n_gaussians} Gaussians is more than the {height * width} pixels "
                      f"of this {width}x{height} image")
    if settings.iterations < 1:
        raise GIError(f"iterations must be at least 1, got {settings.iterations}")
    if not settings.lr > 0:
        raise GIError(f"the learning rate must be positive, got {settings.lr}")


def _run(target, channels, settings, progress, progress_every):
    height, width = target.shape[:2]
    rng = np.random.default_rng(settings.seed)
    strategy = DensifyStrategy(settings.n_gaussians, height, width, iterations=settings.iterations,
                               densify=settings.densify, caf=settings.caf)
    state = strategy.initial_state(rng)
    rasterizer = make_rasterizer(settings.backend, height, width)
    rasterizer.set_target(target.transpose(2, 0, 1))
    n_values = 3 * height * width

    best = (-math.inf, None, None, 0)
    iteration, interrupted, diverged, warmup = 0, False, False, 0.0
    start = time.perf_counter()
    try:
        for iteration in range(1, settings.iterations + 1):
            sse, grads = rasterizer.loss_and_gradients(state.params, state.lam)
            if not (math.isfinite(sse) and np.isfinite(grads).all() and np.isfinite(state.params).all()):
                diverged = True
                break
            psnr = psnr_from_mse(sse / n_values)
            if psnr > best[0]:
                best = (psnr, state.params.copy(), state.lam.copy(), iteration)
            state.adam.step(state.params, grads, step_decay(settings.lr, iteration - 1, settings.lr_decay_every))
            render = None
            if strategy.wants_render(iteration):
                render = rasterizer.render(state.params, state.lam).transpose(1, 2, 0)
            strategy.after_step(state, iteration, render, target, rng)
            if iteration == 1:
                warmup = time.perf_counter() - start
            if progress is not None and (iteration % progress_every == 0 or iteration == settings.iterations):
                progress(Progress(iteration, settings.iterations, psnr, best[0], state.n_gaussians,
                                  time.perf_counter() - start, warmup))
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - start

    best_psnr, params, lam, best_iteration = best
    model = None
    if params is not None:
        stats = dict(best_iteration=best_iteration, iterations_run=iteration - (1 if diverged else 0),
                     seconds=seconds, interrupted=interrupted)
        model = GaussianImage(params=params, lam=lam, height=height, width=width, channels=channels,
                              iteration=best_iteration, seed=settings.seed,
                              settings=asdict(settings), psnr=best_psnr, stats=stats)
    if diverged:
        kept = (f"kept the best state (iteration {best_iteration}, PSNR {best_psnr:.2f} dB)"
                if model is not None else "no good state to keep")
        raise FitDiverged(f"fit diverged: the loss became NaN at iteration {iteration}; {kept}", model)
    if model is None:
        raise KeyboardInterrupt
    return model
