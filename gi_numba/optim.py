"""Adam, written out by hand (ALGORITHM.md §4).

The optimiser state is two arrays shaped like the ``(N, 8)`` parameters, so
growth and pruning add or remove a Gaussian's moments together with its row
(:mod:`gi_numba.strategy.ops`). New rows start with zero moments; the step
count ``t`` is global, as in PyTorch when a parameter tensor is extended.
"""

import math
from dataclasses import dataclass

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy", fastmath={"nsz", "arcp", "contract", "reassoc", "afn"})
def _adam_kernel(params, grads, m, v, lr, beta1, beta2, eps, step):
    """One Adam update in place on flat float32 arrays."""
    bias1 = 1.0 - beta1 ** step
    bias2 = 1.0 - beta2 ** step
    step_size = np.float32(lr / bias1)
    inv_sqrt_bias2 = np.float32(1.0 / np.sqrt(bias2))
    b1, b2 = np.float32(beta1), np.float32(beta2)
    c1, c2 = np.float32(1.0 - beta1), np.float32(1.0 - beta2)
    e = np.float32(eps)
    for i in range(params.size):
        g = grads[i]
        mi = b1 * m[i] + c1 * g
        vi = b2 * v[i] + c2 * g * g
        m[i] = mi
        v[i] = vi
        params[i] -= step_size * mi / (math.sqrt(vi) * inv_sqrt_bias2 + e)


@dataclass
class Adam:
    """Adam with ``beta1 = 0.9, beta2 = 0.999, eps = 1e-15`` (ALGORITHM.md §4).

    ``m`` and ``v`` are the first and second moments, shaped like the parameters.
    Tutorial: step 4 of docs/tutorial.md writes it by hand and compares.
    """

    m: np.ndarray
    v: np.ndarray
    step_count: int = 0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-15

    @classmethod
    def zeros_like(cls, params, **kwargs):
        """Fresh optimiser state for ``params``."""
        return cls(np.zeros_like(params, np.float32), np.zeros_like(params, np.float32), **kwargs)

    def step(self, params, grads, lr):
        """Update ``params`` in place from ``grads`` with learning rate ``lr``."""
        self.step_count += 1
        _adam_kernel(params.reshape(-1), grads.reshape(-1), self.m.reshape(-1), self.v.reshape(-1),
                     float(lr), self.beta1, self.beta2, self.eps, float(self.step_count))


def step_decay(base_lr, iteration, every, factor=0.5):
    """Learning rate ``base_lr * factor ** (iteration // every)`` (ALGORITHM.md §4)."""
    return base_lr * factor ** (iteration // every)
