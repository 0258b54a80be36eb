"""Adding and removing Gaussians together with their optimiser moments (ALGORITHM.md §4-§5).

A Gaussian is one row of ``params``, one entry of ``lam`` and one row of each
Adam moment. These two functions are the only places that change ``N``, so
the four arrays can never fall out of step.
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
