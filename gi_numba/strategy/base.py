"""What the training loop asks of a strategy; the strategies that change nothing or only prune (docs/algorithm.md §5).

A strategy decides who is created, grown and pruned, and when. The fit
calls :meth:`Strategy.initial_state` once for a fresh start; the loop
(:func:`gi_numba.training.train`) asks :meth:`Strategy.fresh_memory` for
what the strategy remembers between steps of that one run, holds it, and
passes it to :meth:`Strategy.after_step` after every optimiser step, so a
strategy object itself never changes and can run any number of fits;
a strategy changes ``N`` only through the state's
``prune_non_positive_definite`` and ``add_gaussians``, so optimiser moments
follow their Gaussians on the host and on a GPU alike.

:class:`Strategy` itself is the null strategy: every one of the ``n_max``
Gaussians from the first iteration, none ever pruned or grown (the
``--no-densify`` fit). :class:`PruneStrategy` only prunes (quantisation-aware
training); :class:`~.densify.DensifyStrategy` prunes and grows (GI++).
"""

import math
from dataclasses import dataclass

import numpy as np

from ..defaults import PRUNE_EVERY
from ..optim import OPTIMIZERS
from ..parameterisation import DIRECT
from .ops import TrainState

#: Upper bound of the CAF filter variance (docs/algorithm.md §1).
MAX_FILTER = 300.0


@dataclass
class Strategy:
    """The null strategy for a budget of ``n_max`` Gaussians on a ``height x width`` image.

    ``caf=False`` sets every filter to 0 and, since unfiltered ``U(0,1)^3``
    covariances are often degenerate, offsets the initial ones by
    ``(0.5, 0, 0.5)`` as growth does. ``parameterisation`` says what the
    trained numbers are and how new Gaussians start (GI++ by default; the
    GaussianImage baselines train other numbers, see
    :mod:`gi_numba.parameterisation`).
    """

    n_max: int
    height: int
    width: int
    caf: bool = True
    parameterisation: object = DIRECT

    def filter_variance(self, n_gaussians) -> float:
        """CAF filter ``lam = min(H W / (9 pi N), 300)`` for Gaussians created at count ``N`` (§1; tutorial step 6)."""
        if not self.caf:
            return 0.0
        return min(self.height * self.width / (9.0 * math.pi * max(n_gaussians, 1)), MAX_FILTER)

    def initial_count(self) -> int:
        """How many Gaussians a fresh fit starts with: all ``n_max``."""
        return self.n_max

    def initial_state(self, rng, target=None) -> TrainState:
        """:meth:`initial_count` Gaussians drawn by the parameterisation, with their filter and fresh moments.

        ``target`` (the ``(H, W, 3)`` image) is for strategies that place
        Gaussians by its content; this one does not look at it.
        """
        n = self.initial_count()
        model = self.parameterisation
        params = model.initial(rng, n, self.height, self.width, self.caf)
        return TrainState.fresh(params, np.full(n, self.filter_variance(n), np.float32),
                                OPTIMIZERS[model.optimizer], model)

    def fresh_memory(self, n_gaussians: int) -> dict:
        """What this strategy remembers between the steps of one run that starts with ``n_gaussians``
        (the caller holds it and passes it to :meth:`after_step`); the null strategy remembers nothing."""
        return {}

    def after_step(self, state, iteration: int, largest_errors, rng, memory: dict) -> bool:
        """Change ``state`` after optimiser step ``iteration`` (1-based); returns whether ``N`` changed.

        ``largest_errors(k)`` returns the rows and columns of the ``k`` pixels
        where the current render is worst (see
        :func:`~.densify.largest_error_pixels`); ``memory`` is this run's
        :meth:`fresh_memory`. The null strategy changes nothing.
        """
        return False


@dataclass
class PruneStrategy(Strategy):
    """Every ``prune_every`` iterations, drop the Gaussians whose filtered covariance is not positive definite."""

    prune_every: int = PRUNE_EVERY

    def after_step(self, state, iteration, largest_errors, rng, memory) -> bool:
        """Prune on schedule (docs/algorithm.md §5); returns whether ``N`` changed."""
        if iteration % self.prune_every == 0:
            return state.prune_non_positive_definite()
        return False
