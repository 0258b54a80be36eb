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


_FASTMATH = {"nsz", "arcp", "contract", "reassoc", "afn"}  # no "nnan"/"ninf": NaNs must stay visible


@numba.njit(cache=True, inline="always", error_model="numpy", fastmath=_FASTMATH)
def adam_update(p, g, m, v, step_size, inv_sqrt_bias2, beta1, beta2, rest1, rest2, eps):
    """Adam's update of one value: new ``(p, m, v)`` (ALGORITHM.md §4).

    ``step_size = lr / (1 - beta1^t)``, ``inv_sqrt_bias2 = 1 / sqrt(1 - beta2^t)``
    and ``rest1, rest2 = 1 - beta1, 1 - beta2``, all float32. The CPU loop
    below and the GPU kernel (:mod:`gi_numba.gpu_train`) both call it.
    """
    m = beta1 * m + rest1 * g
    v = beta2 * v + rest2 * g * g
    return p - step_size * m / (math.sqrt(v) * inv_sqrt_bias2 + eps), m, v


@numba.njit(cache=True, error_model="numpy")
def adam_constants(lr, beta1, beta2, eps, step):
    """The float32 arguments of :func:`adam_update` after ``step`` steps (a huge ``lr`` becomes inf)."""
    bias1 = 1.0 - beta1 ** step
    bias2 = 1.0 - beta2 ** step
    return (np.float32(lr / bias1), np.float32(1.0 / math.sqrt(bias2)), np.float32(beta1), np.float32(beta2),
            np.float32(1.0 - beta1), np.float32(1.0 - beta2), np.float32(eps))


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def _adam_kernel(params, grads, m, v, lr, beta1, beta2, eps, step):
    """One Adam update in place on flat float32 arrays."""
    step_size, inv_sqrt_bias2, b1, b2, rest1, rest2, e = adam_constants(lr, beta1, beta2, eps, step)
    for i in range(params.size):
        params[i], m[i], v[i] = adam_update(params[i], grads[i], m[i], v[i], step_size, inv_sqrt_bias2,
                                            b1, b2, rest1, rest2, e)


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
