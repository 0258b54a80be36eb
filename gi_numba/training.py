"""The training loop, once for every phase and every backend (docs/algorithm.md §2-§6).

A :class:`Phase` says what to train and for how long: its iterations, its
learning rate and decay, the strategy that prunes and grows, and the
parameter map (:mod:`gi_numba.maps`) from trained to drawn numbers. A
representation fit is one phase; the codec runs a warm-up phase and then a
quantisation-aware one (:mod:`gi_numba.encoder`).

:func:`train` runs a phase on a *training state*: the Gaussians, their
optimiser state and the remembered best, wherever they live: any
:class:`TrainingState`. :class:`HostTraining` keeps them in NumPy arrays
(rasterising on either backend); :class:`gi_numba.gpu_train.DeviceTrainState`
keeps everything on a GPU. :func:`run_phase` sets up the rasteriser and the
state a phase trains with, and runs it: a fit, the warm-up and QAT of an
encode all start there.
"""

import math
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import GIError
from .interrupt import interruptible_range
from .maps import IdentityMap
from .metrics import psnr_from_mse
from .raster import make_rasterizer
from .strategy.densify import largest_error_pixels


@dataclass
class Phase:
    """One stretch of training with its own settings (a fit, the codec's warm-up, or its QAT).

    ``lr`` is one learning rate or one per parameter column (an ``(8,)``
    array: per attribute); ``schedule(lr, iteration)`` gives the rate of each
    iteration (:mod:`gi_numba.optim`: the paper's :class:`~.optim.StepDecay`,
    :class:`~.optim.CosineDecay`, :class:`~.optim.Constant`). ``stop`` may end
    the phase before ``iterations`` (:class:`StopRule`).
    """

    name: str
    iterations: int
    lr: object
    schedule: object
    strategy: object
    mapping: object = None
    stop: object = None

    def __post_init__(self):
        if self.mapping is None:
            self.mapping = IdentityMap()
        if self.stop is None:
            self.stop = StopRule()

    def lr_at(self, iteration) -> float | np.ndarray:
        """Learning rate of (1-based) ``iteration``."""
        return self.schedule(self.lr, iteration)


@dataclass(frozen=True)
class StopRule:
    """When a phase may end before its last iteration; by default it never does.

    ``seconds``: once that much wall-clock time has passed (the result then
    depends on the machine's speed). ``psnr``: once the training PSNR reaches
    it. ``plateau``: once the best PSNR has gained less than ``min_gain`` dB
    over the last ``plateau`` iterations, all of them after iteration
    ``after`` (convergence).
    """

    seconds: float | None = None
    psnr: float | None = None
    plateau: int | None = None
    min_gain: float = 0.01
    after: int = 0

    def reason(self, iteration, psnr, elapsed, best_history) -> str | None:
        """Why the phase stops after ``iteration``, or ``None`` to go on.

        ``best_history[i]`` is the best PSNR after iteration ``i + 1``.
        """
        if self.seconds is not None and elapsed >= self.seconds:
            return "time"
        if self.psnr is not None and psnr >= self.psnr:
            return "psnr"
        if (self.plateau is not None and iteration > self.after + self.plateau
                and best_history[-1] - best_history[-1 - self.plateau] < self.min_gain):
            return "converged"
        return None


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
    phase: str = "fit"   # the phase's name: "fit", or an encoder's "warm-up" and "QAT"

    @property
    def eta(self) -> float:
        """Seconds left at the average speed since the first iteration."""
        steady = (self.elapsed - self.warmup) / max(self.iteration - 1, 1)
        return steady * (self.iterations - self.iteration)


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
    stopped: str | None = None  # why a StopRule ended the phase early: "time", "psnr" or "converged"


class FitDiverged(GIError):
    """The loss became NaN or infinite; ``model`` holds the best state before that (or ``None``)."""

    def __init__(self, message, model):
        super().__init__(message)
        self.model = model


def train(state, phase, rng=None, progress=None, progress_every=100, snapshots=None) -> "TrainResult":
    """Run ``phase`` on the training ``state``; returns the best state seen as a :class:`TrainResult`.

    Each iteration renders and differentiates the current state, remembers
    it if its loss (squared error plus the map's penalty) is the lowest so
    far, takes one optimiser step, and lets the phase's strategy prune or grow. Ctrl-C (:mod:`gi_numba.interrupt`) and a
    NaN loss end the loop early; the best state is kept either way.
    ``snapshots`` (optional) sees the drawn Gaussians of the iterations it wants.
    """
    best_loss, best_psnr, best_iteration, best_history = math.inf, -math.inf, 0, []
    iteration, interrupted, diverged, warmup, stopped = 0, False, False, 0.0, None
    start = time.perf_counter()
    memory = phase.strategy.fresh_memory(state.n_gaussians)
    try:
        for iteration in interruptible_range(phase.iterations):
            sse, not_finite = state.loss_and_flag()
            if snapshots is not None and snapshots.wants(iteration):
                snapshots(iteration, *state.drawn())
            if not_finite or not math.isfinite(sse):
                diverged = True
                break
            psnr = psnr_from_mse(sse / state.n_values)
            loss = sse + state.penalty
            if loss < best_loss:
                best_loss, best_psnr, best_iteration = loss, psnr, iteration
                state.remember_best()
            state.step(phase.lr_at(iteration), iteration)
            phase.strategy.after_step(state, iteration, state.largest_errors, rng, memory)
            if iteration == 1:
                warmup = time.perf_counter() - start
            best_history.append(best_psnr)
            elapsed = time.perf_counter() - start
            stopped = phase.stop.reason(iteration, psnr, elapsed, best_history)
            if progress is not None and (iteration % progress_every == 0 or iteration == phase.iterations
                                         or stopped):
                progress(Progress(iteration, phase.iterations, psnr, best_psnr, state.n_gaussians, elapsed,
                                  warmup, phase.name))
            if stopped:
                break
    except KeyboardInterrupt:
        interrupted = True
    interrupted = interrupted or iteration < phase.iterations and not (diverged or stopped)
    params, lam, extra = state.best() if best_iteration else (None, None, None)
    return TrainResult(best_psnr, params, lam, extra, best_iteration, iteration - (1 if diverged else 0),
                       time.perf_counter() - start, interrupted, diverged, stopped)


def run_phase(phase, start, target, backend, rng=None, progress=None, progress_every=100,
              snapshots=None) -> "TrainResult":
    """Run ``phase`` from the host :class:`~gi_numba.strategy.TrainState` ``start`` against ``target``
    (``[H, W, 3]``) on the named ``backend``; returns :func:`train`'s :class:`TrainResult`.

    The training state is the rasteriser's to choose (:func:`training_state`);
    ``snapshots`` (optional) is told when the phase starts and ends.
    """
    height, width = target.shape[:2]
    rasterizer = make_rasterizer(backend, height, width)
    rasterizer.set_target(target.transpose(2, 0, 1))
    state = training_state(start, phase, rasterizer, target)
    if snapshots is not None:
        snapshots.start(target, phase.iterations)
    try:
        return train(state, phase, rng, progress, max(int(progress_every), 1), snapshots)
    finally:
        if snapshots is not None:
            snapshots.finish()


def training_state(start, phase, rasterizer, target) -> "TrainingState":
    """The :class:`TrainingState` that trains ``start`` in ``phase`` with ``rasterizer``: on its device if it
    keeps training state there (``trains_on_device``) and the phase's map is the identity (the GPU state
    draws the trained parameters as they are, :mod:`gi_numba.gpu_train`), else in host arrays."""
    if rasterizer.trains_on_device and isinstance(phase.mapping, IdentityMap):
        from .gpu_train import DeviceTrainState  # needs numba-cuda, the cuda extra
        return DeviceTrainState(start, phase.strategy.n_max, rasterizer)
    return HostTraining(start, rasterizer, target, phase.mapping)


def raise_if_diverged(result, model) -> None:
    """Turn a diverged :class:`TrainResult` into :class:`FitDiverged` carrying the best model."""
    if not result.diverged:
        return
    kept = (f"kept the best state (iteration {result.best_iteration}, PSNR {result.psnr:.2f} dB)"
            if model is not None else "no good state to keep")
    raise FitDiverged(f"fit diverged: the loss became NaN at iteration {result.iterations_run + 1}; {kept}", model)


@runtime_checkable
class TrainingState(Protocol):
    """What :func:`train` and a strategy need of a training state: :class:`HostTraining` (host arrays) and
    :class:`~gi_numba.gpu_train.DeviceTrainState` (the GPU's) are the two.

    ``n_values`` is what the loss sums (``3 H W``) and ``penalty`` the map's
    loss beyond the squared error, both read after :meth:`loss_and_flag`.
    """

    n_values: int
    penalty: float

    @property
    def n_gaussians(self) -> int: ...

    def loss_and_flag(self) -> tuple:
        """``(sum of squared errors, whether anything is not finite)`` of the current state, gradients kept."""

    def drawn(self) -> tuple:
        """``(params [N, 8], lam [N])`` the last :meth:`loss_and_flag` drew."""

    def remember_best(self) -> None:
        """Keep the current state as the best."""

    def best(self) -> tuple:
        """``(params, lam, the map's snapshot)`` last remembered."""

    def step(self, lr, iteration: int) -> None:
        """One optimiser step with the gradients of the last :meth:`loss_and_flag`."""

    def largest_errors(self, k: int) -> tuple:
        """Rows and columns of the ``k`` worst pixels of the current render."""

    def residual_colours(self, ys, xs) -> np.ndarray:
        """Trained colours ``[k, 3]`` that would draw ``target - render`` at pixels ``(ys, xs)``."""

    def prune_non_positive_definite(self) -> bool:
        """Remove the Gaussians whose covariance is not positive definite."""

    def add_gaussians(self, params, lam) -> None:
        """Append Gaussians ``params [k, 8]``, ``lam [k]`` with fresh optimiser state."""


class HostTraining:
    """A training state in host arrays: a :class:`~gi_numba.strategy.TrainState` drawn through a map.

    The rasteriser (either backend) renders what ``mapping`` draws from the
    trained ``state`` against ``target`` (``(H, W, 3)``, already set on it).
    """

    def __init__(self, state, rasterizer, target, mapping):
        self.state, self.rasterizer, self.target, self.mapping = state, rasterizer, target, mapping
        self.n_values = rasterizer.n_values
        self._drawn = self._grads = self._own_grads = self._best = None
        self.penalty = 0.0

    @property
    def n_gaussians(self) -> int:
        return self.state.n_gaussians

    def loss_and_flag(self) -> tuple:
        state = self.state
        drawn, drawn_lam, context = self.mapping.forward(state.params, state.lam)
        self._drawn = (drawn, drawn_lam)
        self.penalty = self.mapping.penalty(context)
        sse, grads = self.rasterizer.loss_and_gradients(drawn, drawn_lam)
        not_finite = not (math.isfinite(sse) and np.isfinite(grads).all() and np.isfinite(state.params).all())
        if not not_finite:
            self._grads, self._own_grads = self.mapping.backward(grads, context)
        return sse, not_finite

    def drawn(self) -> tuple:
        return self._drawn

    def remember_best(self) -> None:
        self._best = (self.state.params.copy(), self.state.lam.copy(), self.mapping.snapshot())

    def best(self) -> tuple:
        return self._best

    def step(self, lr, iteration) -> None:
        self.state.optimizer.step(self.state.params, self._grads, lr)
        self.mapping.step(self._own_grads, iteration)

    def largest_errors(self, k) -> tuple:
        """Rows and columns of the ``k`` worst pixels of the current render (the strategy's ranking)."""
        drawn, drawn_lam, _ = self.mapping.forward(self.state.params, self.state.lam)
        render = self.rasterizer.render(drawn, drawn_lam).transpose(1, 2, 0)
        return largest_error_pixels(render, self.target, k)

    def residual_colours(self, ys, xs) -> np.ndarray:
        """Trained colours that would draw ``target - render`` at pixels ``(ys, xs)`` (``(k, 3)``)."""
        drawn, drawn_lam, _ = self.mapping.forward(self.state.params, self.state.lam)
        render = self.rasterizer.render(drawn, drawn_lam)
        return self.mapping.trained_colours(self.target[ys, xs] - render[:, ys, xs].T)

    def prune_non_positive_definite(self) -> bool:
        return self.state.prune_non_positive_definite()

    def add_gaussians(self, params, lam) -> None:
        self.state.add_gaussians(params, lam)
