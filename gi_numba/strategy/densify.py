"""Distortion-driven densification with content-aware filters (ALGORITHM.md §5).

:class:`DensifyStrategy` owns the schedule: sparse initialisation, pruning of
Gaussians whose filtered covariance is not positive definite, and growth at
the pixels with the largest error. The fit loop calls :meth:`initial_state`
once and :meth:`after_step` after every optimiser step; the changes to ``N``
go through the state's ``prune_non_positive_definite`` and ``add_gaussians``
(:mod:`.ops` on the host, :mod:`gi_numba.gpu_train` on a GPU), so Adam
moments follow their Gaussians and one schedule serves both loops.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..defaults import GROW_BATCH, GROWTH_STEPS, ITERATIONS, PRUNE_EVERY
from ..optim import OPTIMIZERS
from ..parameterisation import DIRECT, positive_definite
from .ops import TrainState

#: Upper bound of the CAF filter variance (ALGORITHM.md §1).
MAX_FILTER = 300.0


@dataclass
class DensifyStrategy:
    """GaussianImage++'s densification schedule for a budget of ``n_max`` Gaussians.

    ``grow_every`` defaults to ``iterations // 10`` (5 000 for the paper's
    50 000), so a short fit still reaches its budget. ``densify=False`` starts
    with all ``n_max`` Gaussians and never grows or prunes; ``caf=False`` sets
    every filter to 0 and, since unfiltered ``U(0,1)^3`` covariances are often
    degenerate, offsets the initial ones by ``(0.5, 0, 0.5)`` as growth does.
    ``growth=False`` keeps pruning but pauses growth (quantisation-aware training).
    ``parameterisation`` says what the trained numbers are and how new
    Gaussians start (GI++ by default; the GaussianImage baselines train other
    numbers, see :mod:`gi_numba.parameterisation`).
    Tutorial: steps 5 (growth, pruning) and 6 (filters) of docs/tutorial.md.
    """

    n_max: int
    height: int
    width: int
    iterations: int = ITERATIONS
    grow_every: int | None = None
    prune_every: int = PRUNE_EVERY
    grow_batch: int = GROW_BATCH
    densify: bool = True
    caf: bool = True
    growth: bool = True
    parameterisation: object = DIRECT

    def __post_init__(self):
        if self.grow_every is None:
            self.grow_every = max(self.iterations // GROWTH_STEPS, 1)

    def filter_variance(self, n_gaussians):
        """CAF filter ``lam = min(H W / (9 pi N), 300)`` for Gaussians created at count ``N`` (§1; tutorial step 6)."""
        if not self.caf:
            return 0.0
        return min(self.height * self.width / (9.0 * math.pi * max(n_gaussians, 1)), MAX_FILTER)

    def initial_state(self, rng):
        """Sparse initialisation with ``N_max / 2`` Gaussians (all ``N_max`` without densification)."""
        n = max(self.n_max // 2, 1) if self.densify else self.n_max
        model = self.parameterisation
        params = model.initial(rng, n, self.height, self.width, self.caf)
        return TrainState.fresh(params, np.full(n, self.filter_variance(n), np.float32),
                                OPTIMIZERS[model.optimizer], model)

    def grows_at(self, iteration):
        """Whether :meth:`after_step` at ``iteration`` is a growth step."""
        return self.densify and self.growth and iteration % self.grow_every == 0 and iteration < self.iterations

    def after_step(self, state, iteration, largest_errors, rng):
        """Prune and grow after optimiser step ``iteration`` (1-based).

        ``largest_errors(k)`` returns the rows and columns of the ``k`` pixels
        where the current render is worst (see :func:`largest_error_pixels`);
        it is called only on a growth step. Returns whether ``N`` changed.
        """
        if not self.densify:
            return False
        changed = False
        if iteration % self.prune_every == 0:
            changed |= state.prune_non_positive_definite()
        if self.grows_at(iteration):
            changed |= self.grow(state, iteration, largest_errors, rng)
        return changed

    def grow(self, state, iteration, largest_errors, rng):
        """Add Gaussians at the pixels with the largest L1 error (ALGORITHM.md §5)."""
        room = self.n_max - state.n_gaussians
        final = iteration >= self.iterations - self.grow_every
        k = room if final else min(self.grow_batch, room)
        if k <= 0:
            return False
        ys, xs = largest_errors(k)
        new = self.parameterisation.at_pixels(xs, ys, rng, self.height, self.width)
        new = new[positive_definite(self.parameterisation.covariance(new))]
        if not new.shape[0]:
            return False
        lam = self.filter_variance(state.n_gaussians + new.shape[0])
        state.add_gaussians(new, np.full(new.shape[0], lam, np.float32))
        return True


def largest_error_pixels(render, target, k):
    """Rows and columns of the ``k`` pixels with the largest ``sum_c |render - target|``.

    Ordered by error, largest first. Ties are broken by pixel index, also at
    the k-th place: of the pixels tied with the k-th largest error, the first
    ones are taken. Tutorial: step 5 of docs/tutorial.md.
    """
    error = np.abs(np.asarray(render, np.float32) - np.asarray(target, np.float32)).sum(axis=2).ravel()
    k = min(k, error.size)
    kth = -np.partition(-error, k - 1)[k - 1]
    above = np.flatnonzero(error > kth)
    top = np.concatenate([above, np.flatnonzero(error == kth)[:k - above.size]])
    top = top[np.lexsort((top, -error[top]))]
    return np.divmod(top, render.shape[1])
