"""Fitting an image: the representation phase of training (ALGORITHM.md §2-§5).

:func:`fit` turns its options into :class:`FitSettings`, builds the phase
(:func:`representation_phase`: iterations, the step-decayed learning rate,
the densification strategy and the parameter map) and runs it with the one
training loop, :func:`gi_numba.training.train`. One iteration is

1. fused forward + MSE loss + backward on the current Gaussians
   (:meth:`~gi_numba.raster.pipeline.CpuRasterizer.loss_and_gradients`);
2. remember the parameters if this is the best PSNR so far (§4);
3. one Adam step with the step-decayed learning rate (§4);
4. pruning and growth when the schedule says so (§5).

At the end (or on Ctrl-C) the best parameters are returned as a
:class:`~gi_numba.model.GaussianImage`. On the ``cuda`` backend a fit whose
map is the identity keeps its whole state on the GPU
(:mod:`gi_numba.gpu_train`); any other map (the codec's sigmoid colours, the
GaussianImage baselines) trains host arrays and rasterises on the GPU.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .defaults import ITERATIONS, LR_DECAY_FRACTION
from .errors import GIError
from .image_io import load_image, to_float_rgb
from .limits import check_number
from .maps import IdentityMap, ParameterMap, SigmoidColourMap
from .model import GaussianImage
from .parameterisation import DIRECT, parameterisation
from .raster import make_rasterizer
from .strategy import DensifyStrategy
from .training import FitDiverged, HostTraining, Phase, Progress, raise_if_diverged, train

__all__ = ["FitDiverged", "FitSettings", "Progress", "as_target", "fit", "fit_target", "representation_phase"]


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
    return fit_target(target, channels, settings, progress, progress_every, snapshots)


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


def representation_phase(settings, height, width, name="fit"):
    """The :class:`~gi_numba.training.Phase` a fit with ``settings`` runs on a ``height x width`` image."""
    model = parameterisation(settings.model)
    strategy = DensifyStrategy(settings.n_gaussians, height, width, iterations=settings.iterations,
                               densify=settings.densify, caf=settings.caf, parameterisation=model)
    return Phase(name, settings.iterations, settings.lr, settings.lr_decay_every, strategy,
                 _mapping(settings, model, height, width))


def fit_target(target, channels, settings, progress=None, progress_every=100, snapshots=None, name="fit"):
    """Fit an already loaded ``(H, W, 3)`` target with ``settings``; the phase is called ``name`` in progress."""
    height, width = target.shape[:2]
    _check(settings, height, width)
    rng = np.random.default_rng(settings.seed)
    phase = representation_phase(settings, height, width, name)
    host = phase.strategy.initial_state(rng)
    rasterizer = make_rasterizer(settings.backend, height, width)
    rasterizer.set_target(target.transpose(2, 0, 1))
    if rasterizer.name == "cuda" and isinstance(phase.mapping, IdentityMap):
        from .gpu_train import DeviceTrainState
        state = DeviceTrainState(host, phase.strategy.n_max, rasterizer)
    else:
        state = HostTraining(host, rasterizer, target, phase.mapping)
    if snapshots is not None:
        snapshots.start(target, settings.iterations)
    try:
        result = train(state, phase, rng, progress, max(int(progress_every), 1), snapshots)
    finally:
        if snapshots is not None:
            snapshots.finish()
    fitted = None
    if result.params is not None:
        stats = dict(best_iteration=result.best_iteration, iterations_run=result.iterations_run,
                     seconds=result.seconds, interrupted=result.interrupted)
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
    if settings.sigmoid_colours:
        if model is not DIRECT:
            raise GIError(f"sigmoid colours (compression) need the gi++ model, not {model.name}")
        return SigmoidColourMap()
    return IdentityMap() if model is DIRECT else ParameterMap(model, height, width)
