"""How each Gaussian's 8 trained numbers become the mean, covariance and colour the rasteriser draws.

GaussianImage++ trains the drawn numbers themselves (docs/algorithm.md §1):
means in pixels and the covariance ``(a, b, c)`` directly. GaussianImage, the
baseline (docs/algorithm.md, last section), trains other numbers:

=================  ============================================  =====================================
model              trained ``(t1..t5)`` of columns 0-4            drawn mean and covariance
=================  ============================================  =====================================
``gi++``           ``x, y, a, b, c``                              the same
``gi-cholesky``    ``tx, ty, l1, l2, l3`` (``l`` minus            ``x = W (tanh tx + 1) / 2`` (``y``
                   ``(0.5, 0, 0.5)``)                             alike), ``S = L L^T``,
                                                                  ``L = [[l1, 0], [l2, l3]]``
``gi-rs``          ``tx, ty, s1, s2, r`` (scales minus 0.5)       ``S = R diag(s1^2, s2^2) R^T``,
                                                                  ``s = |t + 0.5|``,
                                                                  ``R`` = rotation by ``2 pi sigmoid(r)``
=================  ============================================  =====================================

Colours (columns 5-7) are drawn as trained in every model. Each
:class:`Parameterisation` maps trained rows to drawn rows (:meth:`draw`),
takes gradients back through that map (:meth:`backward`), and says how a
Gaussian starts (:meth:`initial`, :meth:`at_pixels`); it also names the
optimiser, learning rate and components (densification, CAF) its model
trains with by default.
"""

import math

import numpy as np

from .defaults import LR
from .errors import GIError
from .layout import COLOUR, COV, MEAN, N_PARAMS

#: Covariance offset of grown GI++ Gaussians (and of all of them when CAF is off): docs/algorithm.md §5.
GROWTH_COV_OFFSET = np.array([0.5, 0.0, 0.5], np.float32)


def positive_definite(cov, lam=0.0) -> np.ndarray:
    """Boolean mask: is ``cov + lam I`` positive definite (``a' > 0``, ``c' > 0``, ``a'c' - b'^2 > 0``)?"""
    a, b, c = cov[:, 0] + lam, cov[:, 1], cov[:, 2] + lam
    return (a > 0) & (c > 0) & (a * c - b * b > 0)


def sigmoid(x) -> np.ndarray:
    """``1 / (1 + exp(-x))`` in the precision of ``x``: colours trained as logits (docs/algorithm.md §1, §6)."""
    return 1.0 / (1.0 + np.exp(-x))


class Parameterisation:
    """GaussianImage++'s direct parameterisation; the base of the GaussianImage ones."""

    name = "gi++"
    optimizer = "adam"
    lr = LR
    densify = True
    caf = True

    def initial(self, rng, n, height, width, caf=True) -> np.ndarray:
        """``n`` trained rows of a fresh fit (§5: uniform means, ``S = U(0,1)^3``, colours 0)."""
        params = np.zeros((n, N_PARAMS), np.float32)
        params[:, 0] = rng.uniform(0.0, width, n)
        params[:, 1] = rng.uniform(0.0, height, n)
        params[:, COV] = rng.uniform(0.0, 1.0, (n, 3))
        if not caf:
            params[:, COV] += GROWTH_COV_OFFSET
        return params

    def at_pixels(self, xs, ys, rng, height, width) -> np.ndarray:
        """Trained rows of Gaussians grown at pixels ``(xs, ys)`` (§5: ``S = U(0,1)^3 + (0.5, 0, 0.5)``, colour 0)."""
        params = np.zeros((len(xs), N_PARAMS), np.float32)
        params[:, COV] = rng.uniform(0.0, 1.0, (len(xs), 3)).astype(np.float32) + GROWTH_COV_OFFSET
        params[:, 0], params[:, 1] = xs, ys
        return params

    def covariance(self, params) -> np.ndarray:
        """``(N, 3)`` drawn covariance ``(a, b, c)`` before the CAF filter."""
        return params[:, COV]

    def draw(self, params, height, width) -> np.ndarray:
        """``(N, 8)`` float32 rows as the rasteriser draws them (means in pixels, covariance ``a, b, c``)."""
        return params

    def backward(self, params, grads, height, width) -> np.ndarray:
        """Gradients with respect to the trained rows, from those with respect to the drawn rows."""
        return grads


class _GaussianImage(Parameterisation):
    """What both GaussianImage parameterisations share: tanh means, ``U(0,1)`` colours, Adan at lr 0.001."""

    optimizer = "adan"
    lr = 0.001
    densify = False
    caf = False

    def initial(self, rng, n, height, width, caf=True) -> np.ndarray:
        """GaussianImage's initialisation: ``atanh(U(-1, 1))`` means, ``U(0,1)`` raw covariance and colours."""
        params = np.empty((n, N_PARAMS), np.float32)
        params[:, MEAN] = np.arctanh(rng.uniform(-1.0, 1.0, (n, 2)))
        params[:, COV] = rng.uniform(0.0, 1.0, (n, 3))
        params[:, COLOUR] = rng.uniform(0.0, 1.0, (n, 3))
        return params

    def at_pixels(self, xs, ys, rng, height, width) -> np.ndarray:
        """Gaussians grown at pixels: means through ``atanh``, raw covariance ``U(0,1)^3``, colour 0."""
        params = np.zeros((len(xs), N_PARAMS), np.float32)
        params[:, COV] = rng.uniform(0.0, 1.0, (len(xs), 3))
        params[:, 0] = _to_tanh_space(np.asarray(xs, np.float64), width)
        params[:, 1] = _to_tanh_space(np.asarray(ys, np.float64), height)
        return params

    def draw(self, params, height, width) -> np.ndarray:
        drawn = params.astype(np.float64)
        drawn[:, 0] = 0.5 * width * (np.tanh(drawn[:, 0]) + 1.0)
        drawn[:, 1] = 0.5 * height * (np.tanh(drawn[:, 1]) + 1.0)
        drawn[:, COV] = self.covariance(params)
        return drawn.astype(np.float32)

    def backward(self, params, grads, height, width) -> np.ndarray:
        raw = params.astype(np.float64)
        out = grads.astype(np.float64)
        out[:, 0] *= 0.5 * width * (1.0 - np.tanh(raw[:, 0]) ** 2)
        out[:, 1] *= 0.5 * height * (1.0 - np.tanh(raw[:, 1]) ** 2)
        out[:, COV] = self._covariance_backward(raw[:, COV], out[:, COV])
        return out.astype(np.float32)


def _to_tanh_space(coordinate, size):
    """``atanh(2 p / size - 1)``, kept finite for pixels on the border."""
    return np.arctanh(np.clip(2.0 * coordinate / size - 1.0, -1.0 + 1e-6, 1.0 - 1e-6))


class Cholesky(_GaussianImage):
    """GaussianImage with ``S = L L^T``, ``L = [[l1, 0], [l2, l3]]``, ``l = t + (0.5, 0, 0.5)``."""

    name = "gi-cholesky"
    _BOUND = np.array([0.5, 0.0, 0.5])

    def covariance(self, params) -> np.ndarray:
        l1, l2, l3 = (params[:, COV].astype(np.float64) + self._BOUND).T
        return np.stack([l1 * l1, l1 * l2, l2 * l2 + l3 * l3], axis=1).astype(np.float32)

    def _covariance_backward(self, raw, g):
        l1, l2, l3 = (raw + self._BOUND).T
        ga, gb, gc = g.T
        return np.stack([2 * l1 * ga + l2 * gb, l1 * gb + 2 * l2 * gc, 2 * l3 * gc], axis=1)


class RotationScale(_GaussianImage):
    """GaussianImage with ``S = R diag(s1^2, s2^2) R^T``: ``s = |t + 0.5|``, angle ``2 pi sigmoid(r)``."""

    name = "gi-rs"

    @staticmethod
    def _factors(raw):
        s1, s2 = np.abs(raw[:, 0] + 0.5), np.abs(raw[:, 1] + 0.5)
        sig = sigmoid(raw[:, 2])
        theta = 2.0 * math.pi * sig
        return s1 * s1, s2 * s2, theta, sig

    def covariance(self, params) -> np.ndarray:
        u, w, theta, _ = self._factors(params[:, COV].astype(np.float64))
        cos, sin = np.cos(theta), np.sin(theta)
        return np.stack([cos * cos * u + sin * sin * w, cos * sin * (u - w), sin * sin * u + cos * cos * w],
                        axis=1).astype(np.float32)

    def _covariance_backward(self, raw, g):
        u, w, theta, sig = self._factors(raw)
        cos, sin = np.cos(theta), np.sin(theta)
        ga, gb, gc = g.T
        g_u = ga * cos * cos + gb * cos * sin + gc * sin * sin
        g_w = ga * sin * sin - gb * cos * sin + gc * cos * cos
        g_theta = (u - w) * ((gc - ga) * np.sin(2 * theta) + gb * np.cos(2 * theta))
        return np.stack([g_u * 2 * (raw[:, 0] + 0.5), g_w * 2 * (raw[:, 1] + 0.5),
                         g_theta * 2 * math.pi * sig * (1 - sig)], axis=1)


DIRECT = Parameterisation()
#: The models ``--model`` chooses from.
MODELS = {p.name: p for p in (DIRECT, Cholesky(), RotationScale())}


def parameterisation(name) -> "Parameterisation":
    """The :class:`Parameterisation` called ``name``; ``GIError`` for an unknown one."""
    if name not in MODELS:
        raise GIError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]
