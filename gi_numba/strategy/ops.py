"""Adding and removing Gaussians together with their optimiser moments (ALGORITHM.md §4-§5).

A Gaussian is one row of ``params``, one entry of ``lam`` and one row of each
Adam moment. :func:`add_gaussians` and :func:`remove_gaussians` are the only
places that change ``N`` on the host, so the four arrays can never fall out of
step. :class:`TrainState` exposes the two changes the densification strategy
makes as methods; the GPU's ``DeviceTrainState`` has the same two.
"""

from dataclasses import dataclass

import numpy as np

from ..optim import Adam


@dataclass
class TrainState:
    """Everything that training changes: parameters, CAF filters and Adam state."""

    params: np.ndarray  # (N, 8) float32
    lam: np.ndarray     # (N,) float32
    adam: Adam

    @classmethod
    def fresh(cls, params, lam):
        params = np.ascontiguousarray(params, np.float32)
        return cls(params, np.ascontiguousarray(lam, np.float32), Adam.zeros_like(params))

    @property
    def n_gaussians(self):
        return int(self.params.shape[0])

    def add_gaussians(self, params, lam):
        """See :func:`add_gaussians`."""
        add_gaussians(self, params, lam)

    def prune_non_positive_definite(self):
        """See :func:`prune_non_positive_definite`."""
        return prune_non_positive_definite(self)


def add_gaussians(state, params, lam):
    """Append Gaussians (rows of ``params`` and ``lam``) with zero Adam moments."""
    params = np.asarray(params, np.float32).reshape(-1, state.params.shape[1])
    zeros = np.zeros_like(params)
    state.params = np.concatenate([state.params, params])
    state.lam = np.concatenate([state.lam, np.asarray(lam, np.float32).reshape(-1)])
    state.adam.m = np.concatenate([state.adam.m, zeros])
    state.adam.v = np.concatenate([state.adam.v, zeros])


def remove_gaussians(state, remove):
    """Drop the Gaussians where the boolean mask ``remove`` is true, moments included."""
    keep = ~np.asarray(remove, bool)
    state.params = np.ascontiguousarray(state.params[keep])
    state.lam = np.ascontiguousarray(state.lam[keep])
    state.adam.m = np.ascontiguousarray(state.adam.m[keep])
    state.adam.v = np.ascontiguousarray(state.adam.v[keep])


def prune_non_positive_definite(state):
    """Remove Gaussians whose filtered covariance is not positive definite, unless that is all of them (§5)."""
    a = state.params[:, 2] + state.lam
    b = state.params[:, 3]
    c = state.params[:, 4] + state.lam
    bad = ~((a > 0) & (c > 0) & (a * c - b * b > 0))
    if not bad.any() or bad.all():
        return False
    remove_gaussians(state, bad)
    return True
