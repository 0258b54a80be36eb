"""Distortion-driven densification with content-aware filters (docs/algorithm.md §5).

:class:`DensifyStrategy` owns GaussianImage++'s schedule: sparse
initialisation, pruning of Gaussians whose filtered covariance is not
positive definite (as :class:`~.base.PruneStrategy`), and growth at the
pixels with the largest error.
"""

from dataclasses import dataclass

import numpy as np

from ..defaults import GROW_BATCH, GROWTH_STEPS, ITERATIONS
from ..layout import COLOUR, COV, MEAN
from ..parameterisation import positive_definite
from .base import PruneStrategy
from .ops import TrainState

#: Content-aware initialisation (the default recipe's, docs/recipes.md): the share of the initial
#: Gaussians placed by the image's squared gradient (Image-GS's 70%), how many nearest neighbours
#: size each, and its variance as a multiple of the mean squared distance to them.
GRADIENT_SHARE = 0.7
NEIGHBOURS = 4
NEIGHBOUR_VARIANCE = 0.5

#: Smallest initial variance (px²) of a content-aware start: above a degenerately thin Gaussian's.
MIN_START_VARIANCE = 0.25


@dataclass
class DensifyStrategy(PruneStrategy):
    """GaussianImage++'s densification schedule for a budget of ``n_max`` Gaussians.

    Starts with ``n_max / 2`` Gaussians, prunes every ``prune_every``
    iterations and grows every ``grow_every`` before ``growth_until``
    (default: ``iterations``); ``grow_every`` defaults to ``iterations // 10``
    (5 000 for the paper's 50 000), so a short fit still reaches its budget.
    With ``content_aware`` (the default recipe's; §5 starts uniformly) the
    initial Gaussians are placed and sized by the image (:func:`content_aware_start`).
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
    content_aware: bool = False
    residual_colours: bool = False
    refill_until: int | None = None

    def __post_init__(self):
        if self.grow_every is None:
            self.grow_every = max(self.iterations // GROWTH_STEPS, 1)
        if self.growth_until is None:
            self.growth_until = self.iterations

    def initial_count(self) -> int:
        """Sparse initialisation: ``N_max / 2`` Gaussians."""
        return max(self.n_max // 2, 1)

    def initial_state(self, rng, target=None) -> TrainState:
        """The sparse initial state.

        With :attr:`content_aware` the Gaussians are then placed and sized
        by ``target`` (:func:`content_aware_start`).
        """
        state = super().initial_state(rng)
        if self.content_aware and target is not None:
            content_aware_start(state, target, rng)
        return state

    def fresh_memory(self, n_gaussians) -> dict:
        """``refill_target``: the count the last growth step (at first, the start) left, which
        :meth:`refill` grows back to."""
        return dict(refill_target=n_gaussians)

    def grows_at(self, iteration) -> bool:
        """Whether :meth:`after_step` at ``iteration`` is a growth step."""
        return iteration % self.grow_every == 0 and iteration < self.growth_until

    def refills_at(self, iteration) -> bool:
        """Whether :meth:`after_step` at ``iteration`` grows back what pruning took (:meth:`refill`)."""
        return (self.refill_until is not None and iteration < self.refill_until
                and iteration % self.prune_every == 0 and not self.grows_at(iteration))

    @property
    def last_growth(self) -> int:
        """From this iteration on a growth step is the last one, which fills the budget."""
        return self.growth_until - self.grow_every

    def after_step(self, state, iteration, largest_errors, rng, memory) -> bool:
        """Prune and grow (or refill) after optimiser step ``iteration`` (1-based); returns whether ``N`` changed.

        ``largest_errors`` is called only when Gaussians are added.
        """
        changed = super().after_step(state, iteration, largest_errors, rng, memory)
        if self.grows_at(iteration):
            changed |= self.grow(state, iteration, largest_errors, rng)
            memory["refill_target"] = state.n_gaussians
        elif self.refills_at(iteration):
            changed |= self.refill(state, memory["refill_target"], largest_errors, rng)
        return changed

    def grow(self, state, iteration, largest_errors, rng) -> bool:
        """Add Gaussians at the pixels with the largest L1 error (docs/algorithm.md §5)."""
        room = self.n_max - state.n_gaussians
        k = room if iteration >= self.last_growth else min(self.grow_batch, room)
        return self.add_at_largest_errors(state, k, largest_errors, rng)

    def refill(self, state, count, largest_errors, rng) -> bool:
        """Grow back to ``count`` Gaussians (what the last growth step left, :meth:`fresh_memory`) at the
        largest errors: what pruning removed since then.

        The default recipe's departure from §5 (docs/recipes.md): with its
        large covariance steps many Gaussians leave positive definiteness
        between two growth steps, and the fit would run with fewer than its
        growth gave it.
        """
        return self.add_at_largest_errors(state, count - state.n_gaussians, largest_errors, rng)

    def add_at_largest_errors(self, state, k, largest_errors, rng) -> bool:
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


def largest_error_pixels(render, target, k) -> tuple:
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


def content_aware_start(state, target, rng) -> None:
    """Place and size a fresh state's Gaussians by the ``(H, W, 3)`` image ``target``, colours left at 0.

    The default recipe's departure from §5's uniform start (docs/recipes.md,
    "A start shaped by the image"): means from :func:`gradient_sampled_means`
    with :data:`GRADIENT_SHARE`, and each Gaussian round, its filtered
    covariance ``S'`` the variance :func:`neighbour_variances` gives, so the
    Gaussians tile the image from the first iteration: small where they
    crowd on edges, large over flat regions. The trained ``S`` is ``S'``
    less the Gaussian's filter (§1). Tutorial: step 5 of docs/tutorial.md.
    """
    means = gradient_sampled_means(target, state.n_gaussians, GRADIENT_SHARE, rng)
    variance = neighbour_variances(means, NEIGHBOURS, NEIGHBOUR_VARIANCE)
    state.params[:, MEAN] = means
    state.params[:, COV] = np.stack([variance - state.lam, np.zeros_like(variance), variance - state.lam], axis=1)


def gradient_sampled_means(target, n, share, rng) -> np.ndarray:
    """``(n, 2)`` initial means ``(x, y)``: ``share`` of them where the image changes, the rest uniform.

    ``round(share * n)`` pixels are drawn with probability proportional to
    the squared gradient (:func:`squared_gradient`) and jittered uniformly
    within the pixel; the others are uniform in ``[0, W] x [0, H]`` as in §5,
    so flat regions are covered from the start. A flat image gets uniform
    means only.
    """
    height, width = target.shape[:2]
    weight = squared_gradient(target).ravel()
    total = weight.sum()
    k = int(round(share * n)) if total > 0 else 0
    pixels = rng.choice(weight.size, size=k, p=weight / total) if k else np.zeros(0, np.int64)
    ys, xs = np.divmod(pixels, width)
    means = np.empty((n, 2))
    means[:k, 0] = xs + rng.uniform(-0.5, 0.5, k)
    means[:k, 1] = ys + rng.uniform(-0.5, 0.5, k)
    means[k:, 0] = rng.uniform(0.0, width, n - k)
    means[k:, 1] = rng.uniform(0.0, height, n - k)
    return means


def squared_gradient(target) -> np.ndarray:
    """``(H, W)`` sum over channels of the squared central-difference gradient (0 along a side of one pixel)."""
    image = np.asarray(target, np.float64)
    total = np.zeros(image.shape[:2])
    for axis in (0, 1):
        if image.shape[axis] > 1:
            total += (np.gradient(image, axis=axis) ** 2).sum(axis=2)
    return total


def neighbour_variances(means, neighbours, scale) -> np.ndarray:
    """``scale`` times each mean's mean squared distance to its ``neighbours`` nearest others (px², at least
    :data:`MIN_START_VARIANCE`); a lone Gaussian gets §5's mean initial variance (1/2 px²)."""
    n = means.shape[0]
    k = min(neighbours, n - 1)
    if k < 1:
        return np.full(n, 0.5)
    from scipy.spatial import cKDTree  # here, not at the top: it doubles the package's import time
    distances, _ = cKDTree(means).query(means, k + 1)
    return np.maximum(scale * (distances[:, 1:] ** 2).mean(axis=1), MIN_START_VARIANCE)
