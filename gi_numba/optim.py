"""Adam and Adan, written out by hand (docs/algorithm.md §4 and its GaussianImage paragraph).

An optimiser's state is a few arrays shaped like the ``(N, 8)`` parameters,
named in its ``ROW_STATE``, so growth and pruning add or remove a Gaussian's
moments together with its row (:mod:`gi_numba.strategy.ops`). New rows start
with zero state; the step count ``t`` is global, as in PyTorch when a
parameter tensor is extended.
"""

import math
from dataclasses import dataclass

import numba
import numpy as np


_FASTMATH = {"nsz", "arcp", "contract", "reassoc", "afn"}  # no "nnan"/"ninf": NaNs must stay visible


@numba.njit(cache=True, inline="always", error_model="numpy", fastmath=_FASTMATH)
def adam_update(p, g, m, v, step_size, inv_sqrt_bias2, beta1, beta2, rest1, rest2, eps):
    """Adam's update of one value: new ``(p, m, v)`` (docs/algorithm.md §4).

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


@numba.njit(cache=True, error_model="numpy")
def adam_step_sizes(lrs, beta1, beta2, eps, step):
    """:func:`adam_constants` with one learning rate per parameter column: ``step_size`` becomes an array."""
    step_sizes = np.empty(lrs.size, np.float32)
    for column in range(lrs.size):
        step_sizes[column], inv_sqrt_bias2, b1, b2, rest1, rest2, e = adam_constants(lrs[column], beta1, beta2,
                                                                                     eps, step)
    return step_sizes, inv_sqrt_bias2, b1, b2, rest1, rest2, e


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def _adam_kernel(params, grads, m, v, lr, beta1, beta2, eps, step):
    """One Adam update in place on flat float32 arrays, one learning rate for all."""
    step_size, inv_sqrt_bias2, b1, b2, rest1, rest2, e = adam_constants(lr, beta1, beta2, eps, step)
    for i in range(params.size):
        params[i], m[i], v[i] = adam_update(params[i], grads[i], m[i], v[i], step_size, inv_sqrt_bias2,
                                            b1, b2, rest1, rest2, e)


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def _adam_columns_kernel(params, grads, m, v, lrs, beta1, beta2, eps, step):
    """One Adam update in place on ``(N, C)`` float32 arrays, column ``c`` with learning rate ``lrs[c]``."""
    step_sizes, inv_sqrt_bias2, b1, b2, rest1, rest2, e = adam_step_sizes(lrs, beta1, beta2, eps, step)
    per_value = np.empty(params.shape, np.float32)
    per_value[:] = step_sizes  # one step size per value, so the update below is one flat vector loop
    p, g, m1, v1, sizes = params.reshape(-1), grads.reshape(-1), m.reshape(-1), v.reshape(-1), per_value.reshape(-1)
    for i in range(p.size):
        p[i], m1[i], v1[i] = adam_update(p[i], g[i], m1[i], v1[i], sizes[i], inv_sqrt_bias2, b1, b2, rest1, rest2, e)


def column_rates(lr, n_columns):
    """``lr`` as one float64 learning rate per column: a number is used for every column."""
    rates = np.broadcast_to(np.asarray(lr, np.float64), (n_columns,))
    return np.ascontiguousarray(rates)


@dataclass
class Adam:
    """Adam with ``beta1 = 0.9, beta2 = 0.999, eps = 1e-15`` (docs/algorithm.md §4).

    ``m`` and ``v`` are the first and second moments, shaped like the parameters.
    Tutorial: step 4 of docs/tutorial.md writes it by hand and compares.
    """

    m: np.ndarray
    v: np.ndarray
    step_count: int = 0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-15

    #: The per-row state arrays (added and removed with their Gaussians).
    ROW_STATE = ("m", "v")

    @classmethod
    def zeros_like(cls, params, **kwargs):
        """Fresh optimiser state for ``params``."""
        return cls(np.zeros_like(params, np.float32), np.zeros_like(params, np.float32), **kwargs)

    def step(self, params, grads, lr):
        """Update ``params`` in place from ``grads``.

        ``lr`` is one learning rate, or one per column of ``(N, C)`` parameters (per attribute).
        """
        self.step_count += 1
        if np.ndim(lr) == 0:
            _adam_kernel(params.reshape(-1), grads.reshape(-1), self.m.reshape(-1), self.v.reshape(-1),
                         float(lr), self.beta1, self.beta2, self.eps, float(self.step_count))
            return
        _adam_columns_kernel(params, grads, self.m, self.v, column_rates(lr, params.shape[1]), self.beta1,
                             self.beta2, self.eps, float(self.step_count))


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def _adan_kernel(params, grads, m, d, n, previous, lr, beta1, beta2, beta3, eps, step):
    """One Adan update in place on flat float32 arrays (float64 bias corrections)."""
    bias1 = 1.0 - beta1 ** step
    bias2 = 1.0 - beta2 ** step
    sqrt_bias3 = math.sqrt(1.0 - beta3 ** step)
    for i in range(params.size):
        g = grads[i]
        diff = g - previous[i] if step > 1 else np.float32(0.0)
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        d[i] = beta2 * d[i] + (1.0 - beta2) * diff
        nesterov = g + beta2 * diff
        n[i] = beta3 * n[i] + (1.0 - beta3) * nesterov * nesterov
        params[i] -= lr * (m[i] / bias1 + beta2 * d[i] / bias2) / (math.sqrt(n[i]) / sqrt_bias3 + eps)
        previous[i] = g


@dataclass
class Adan:
    """Adan (Xie et al. 2022), GaussianImage's optimiser: betas ``(0.98, 0.92, 0.99)``, ``eps = 1e-8``.

    With ``g`` the gradient and ``diff = g - g_prev`` (0 on the first step)::

        m = b1 m + (1 - b1) g                       (gradient average)
        d = b2 d + (1 - b2) diff                    (gradient-difference average)
        n = b3 n + (1 - b3) (g + b2 diff)^2         (Nesterov second moment)
        p -= lr (m / (1 - b1^t) + b2 d / (1 - b2^t)) / (sqrt(n / (1 - b3^t)) + eps)

    as the authors' PyTorch code (no weight decay). A Gaussian added by
    growth starts with zero state, its previous gradient included.
    """

    m: np.ndarray
    d: np.ndarray
    n: np.ndarray
    previous: np.ndarray
    step_count: int = 0
    beta1: float = 0.98
    beta2: float = 0.92
    beta3: float = 0.99
    eps: float = 1e-8

    ROW_STATE = ("m", "d", "n", "previous")

    @classmethod
    def zeros_like(cls, params, **kwargs):
        """Fresh optimiser state for ``params``."""
        return cls(*(np.zeros_like(params, np.float32) for _ in cls.ROW_STATE), **kwargs)

    def step(self, params, grads, lr):
        """Update ``params`` in place from ``grads`` with learning rate ``lr``."""
        self.step_count += 1
        _adan_kernel(params.reshape(-1), grads.reshape(-1), self.m.reshape(-1), self.d.reshape(-1),
                     self.n.reshape(-1), self.previous.reshape(-1), float(lr), self.beta1, self.beta2,
                     self.beta3, self.eps, float(self.step_count))


OPTIMIZERS = {"adam": Adam, "adan": Adan}


def step_decay(base_lr, iteration, every, factor=0.5):
    """Learning rate ``base_lr * factor ** (iteration // every)`` (docs/algorithm.md §4)."""
    return base_lr * factor ** (iteration // every)


@dataclass(frozen=True)
class Constant:
    """A learning rate that never changes (quantisation-aware training, docs/algorithm.md §6)."""

    def __call__(self, lr, iteration):
        return lr


@dataclass(frozen=True)
class StepDecay:
    """The paper's schedule: ``lr`` halves every ``every`` iterations (docs/algorithm.md §4)."""

    every: int

    def __call__(self, lr, iteration):
        """Learning rate of (1-based) ``iteration``: ``lr * 0.5^floor((iteration - 1) / every)``."""
        return step_decay(lr, iteration - 1, self.every)


@dataclass(frozen=True)
class CosineDecay:
    """``lr`` falls along half a cosine from ``lr`` at the first iteration to ``final * lr`` at ``iterations``.

    The default recipe's schedule (docs/recipes.md): a smooth decay instead of
    two halvings.
    """

    iterations: int
    final: float = 0.05

    def __call__(self, lr, iteration):
        t = min((iteration - 1) / max(self.iterations - 1, 1), 1.0)
        return lr * (self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * t)))

