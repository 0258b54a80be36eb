"""Distortion-driven densification with content-aware filters (ALGORITHM.md §5).

:class:`DensifyStrategy` owns GaussianImage++'s schedule: sparse
initialisation, pruning of Gaussians whose filtered covariance is not
positive definite (as :class:`~.base.PruneStrategy`), and growth at the
pixels with the largest error.
"""

from dataclasses import dataclass, field

import numpy as np

from ..defaults import GROW_BATCH, GROWTH_STEPS, ITERATIONS
from ..layout import COLOUR
from ..parameterisation import positive_definite
from .base import PruneStrategy


@dataclass
class DensifyStrategy(PruneStrategy):
    """GaussianImage++'s densification schedule for a budget of ``n_max`` Gaussians.

    Starts with ``n_max / 2`` Gaussians, prunes every ``prune_every``
    iterations and grows every ``grow_every`` before ``growth_until``
    (default: ``iterations``); ``grow_every`` defaults to ``iterations // 10``
    (5 000 for the paper's 50 000), so a short fit still reaches its budget.
    New Gaussians start with colour 0 (§5) or, with ``residual_colours``, with
    the colour that makes the current render exact at their pixel (the
    default recipe's, docs/recipes.md). With ``refill_until`` (the default
    recipe's; §5 has none), every pruning step before that iteration grows
    back what pruning took since the last growth step (:meth:`refill`).
    Tutorial: steps 5 (growth, pruning) and 6 (filters) of docs/tutorial.md.
    """

    iterations: int = ITERATIONS
    grow_every: int | None = None
    grow_batch: int = GROW_BATCH
    growth_until: int | None = None
    residual_colours: bool = False
    refill_until: int | None = None
    #: The count the last growth step (or the initialisation) left: what :meth:`refill` grows back to.
    refill_target: int = field(default=0, init=False)

    def __post_init__(self):
        if self.grow_every is None:
            self.grow_every = max(self.iterations // GROWTH_STEPS, 1)
        if self.growth_until is None:
            self.growth_until = self.iterations

    def initial_count(self):
        """Sparse initialisation: ``N_max / 2`` Gaussians."""
        return max(self.n_max // 2, 1)

    def initial_state(self, rng):
        """The sparse initial state; :meth:`refill` keeps its count until the first growth step."""
        state = super().initial_state(rng)
        self.refill_target = state.n_gaussians
        return state

    def grows_at(self, iteration):
        """Whether :meth:`after_step` at ``iteration`` is a growth step."""
        return iteration % self.grow_every == 0 and iteration < self.growth_until

    def refills_at(self, iteration):
        """Whether :meth:`after_step` at ``iteration`` grows back what pruning took (:meth:`refill`)."""
        return (self.refill_until is not None and iteration < self.refill_until
                and iteration % self.prune_every == 0 and not self.grows_at(iteration))

    @property
    def last_growth(self):
        """From this iteration on a growth step is the last one, which fills the budget."""
        return self.growth_until - self.grow_every

    def after_step(self, state, iteration, largest_errors, rng):
        """Prune and grow (or refill) after optimiser step ``iteration`` (1-based); returns whether ``N`` changed.

        ``largest_errors`` is called only when Gaussians are added.
        """
        changed = super().after_step(state, iteration, largest_errors, rng)
        if self.grows_at(iteration):
            changed |= self.grow(state, iteration, largest_errors, rng)
        elif self.refills_at(iteration):
            changed |= self.refill(state, largest_errors, rng)
        return changed

    def grow(self, state, iteration, largest_errors, rng):
        """Add Gaussians at the pixels with the largest L1 error (ALGORITHM.md §5)."""
        room = self.n_max - state.n_gaussians
        k = room if iteration >= self.last_growth else min(self.grow_batch, room)
        grown = self.add_at_largest_errors(state, k, largest_errors, rng)
        self.refill_target = state.n_gaussians
        return grown

    def refill(self, state, largest_errors, rng):
        """Grow back at the largest errors what pruning removed since the last growth step (:attr:`refill_target`).

        The default recipe's departure from §5 (docs/recipes.md): with its
        large covariance steps many Gaussians leave positive definiteness
        between two growth steps, and the fit would run with fewer than its
        growth gave it.
        """
        return self.add_at_largest_errors(state, self.refill_target - state.n_gaussians, largest_errors, rng)

    def add_at_largest_errors(self, state, k, largest_errors, rng):
        """Add ``k`` Gaussians at the ``k`` pixels of largest error (those not positive definite are dropped)."""
        if k <= 0:
            return False
        ys, xs = largest_errors(k)
        new = self.parameterisation.at_pixels(xs, ys, rng, self.height, self.width)
        if self.residual_colours:
            new[:, COLOUR] = state.residual_colours(ys, xs)
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
