"""Adding and removing Gaussians together with their optimiser moments (docs/algorithm.md §4-§5).

A Gaussian is one row of ``params``, one entry of ``lam`` and one row of each
optimiser state array (Adam's two moments, Adan's four arrays). :func:`add_gaussians` and :func:`remove_gaussians` are the only
places that change ``N`` on the host, so the four arrays can never fall out of
step. :class:`TrainState` exposes the two changes the densification strategy
makes as methods; the GPU's ``DeviceTrainState`` has the same two.
"""

from dataclasses import dataclass

import numpy as np

from ..optim import Adam
from ..parameterisation import DIRECT, positive_definite


@dataclass
class TrainState:
    """Everything that training changes: parameters, CAF filters and optimiser state.

    ``params`` are the trained numbers of ``parameterisation`` (for GI++ the
    drawn mean, covariance and colour themselves).
    """

    params: np.ndarray  # (N, 8) float32
    lam: np.ndarray     # (N,) float32
    optimizer: object   # Adam or Adan
    parameterisation: object = DIRECT

    @classmethod
    def fresh(cls, params, lam, optimizer=Adam, parameterisation=DIRECT) -> "TrainState":
        params = np.ascontiguousarray(params, np.float32)
        return cls(params, np.ascontiguousarray(lam, np.float32), optimizer.zeros_like(params), parameterisation)

    @property
    def n_gaussians(self) -> int:
        return int(self.params.shape[0])

    def add_gaussians(self, params, lam) -> None:
        """See :func:`add_gaussians`."""
        add_gaussians(self, params, lam)

    def prune_non_positive_definite(self) -> bool:
        """See :func:`prune_non_positive_definite`."""
        return prune_non_positive_definite(self)


def add_gaussians(state, params, lam) -> None:
    """Append Gaussians (rows of ``params`` and ``lam``) with zero optimiser state."""
    params = np.asarray(params, np.float32).reshape(-1, state.params.shape[1])
    zeros = np.zeros_like(params)
    state.params = np.concatenate([state.params, params])
    state.lam = np.concatenate([state.lam, np.asarray(lam, np.float32).reshape(-1)])
    for name in state.optimizer.ROW_STATE:
        setattr(state.optimizer, name, np.concatenate([getattr(state.optimizer, name), zeros]))


def remove_gaussians(state, remove) -> None:
    """Drop the Gaussians where the boolean mask ``remove`` is true, optimiser state included."""
    keep = ~np.asarray(remove, bool)
    state.params = np.ascontiguousarray(state.params[keep])
    state.lam = np.ascontiguousarray(state.lam[keep])
    for name in state.optimizer.ROW_STATE:
        setattr(state.optimizer, name, np.ascontiguousarray(getattr(state.optimizer, name)[keep]))


def prune_non_positive_definite(state) -> bool:
    """Remove Gaussians whose filtered covariance is not positive definite, unless that is all of them (§5)."""
    bad = ~positive_definite(state.parameterisation.covariance(state.params), state.lam)
    if not bad.any() or bad.all():
        return False
    remove_gaussians(state, bad)
    return True
