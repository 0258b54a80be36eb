"""Parameter maps: from the numbers training changes to the Gaussians the rasteriser draws (docs/algorithm.md §1, §6).

A phase of training (:class:`gi_numba.training.Phase`) trains some numbers
and draws others. A *map* is the differentiable function between them, with
these methods and no state that a call could leave behind:

``forward(params, lam) -> (drawn, drawn_lam, context)``
    the ``(N, 8)`` drawn parameters and ``(N,)`` filters, and whatever
    ``backward`` needs (``context``); calling it twice is harmless.
``backward(grads, context) -> (grads, own_grads)``
    the gradient of the loss with respect to the trained ``params`` from that
    with respect to the drawn ones, and the gradients of the map's own
    learned numbers (``None`` for a map that learns nothing).
``step(own_grads, iteration)``
    one optimiser step on the map's own numbers (nothing for most maps).
``snapshot()``
    a copy of the map's own numbers, kept with the best state (or ``None``).
``penalty(context)``
    what the loss adds to the squared error for this draw (the rate term of
    rate-distortion training; 0 for every other map): training keeps the
    state of the lowest squared error plus penalty.
``trained_colours(colours)``
    the trained colour numbers that draw as ``colours`` (``(k, 3)``), as near
    as the map can come: how densification starts a Gaussian at a colour
    (only maps of phases that grow have it; quantisation-aware training does not grow).

:class:`IdentityMap` is GaussianImage++'s representation fit;
:class:`SigmoidColourMap` the codec's warm-up; :class:`ParameterMap` the
GaussianImage baselines; :class:`gi_numba.quantize.QuantizedMap`
quantisation-aware training.
"""

import numpy as np

from .layout import COLOUR
from .parameterisation import sigmoid

#: Drawn colours a sigmoid map can start a Gaussian at: logits within about +-4.6.
SIGMOID_START_RANGE = (0.01, 0.99)


def start_logits(colours) -> np.ndarray:
    """Logits of ``colours`` clipped to :data:`SIGMOID_START_RANGE` (where the sigmoid still learns)."""
    clipped = np.clip(np.asarray(colours, np.float64), *SIGMOID_START_RANGE)
    return np.log(clipped / (1.0 - clipped)).astype(np.float32)


class Map:
    """What the maps without numbers of their own share: nothing to step or snapshot, colours trained as drawn."""

    def step(self, own_grads, iteration):
        pass

    def snapshot(self) -> None:
        return None

    def penalty(self, context) -> float:
        return 0.0

    def trained_colours(self, colours) -> np.ndarray:
        return np.asarray(colours, np.float32)


class IdentityMap(Map):
    """The trained numbers are the drawn ones (GaussianImage++'s representation fit)."""

    def forward(self, params, lam) -> tuple:
        return params, lam, None

    def backward(self, grads, context) -> tuple:
        return grads, None


class SigmoidColourMap(Map):
    """Compression warm-up: colours are trained as logits and drawn as ``sigmoid(logit)`` (docs/algorithm.md §1)."""

    def forward(self, params, lam) -> tuple:
        drawn = params.copy()
        colours = sigmoid(params[:, COLOUR])
        drawn[:, COLOUR] = colours
        return drawn, lam, colours

    def backward(self, grads, colours) -> tuple:
        grads[:, COLOUR] *= colours * (1.0 - colours)
        return grads, None

    def trained_colours(self, colours) -> np.ndarray:
        return start_logits(colours)


class ParameterMap(Map):
    """A GaussianImage baseline: draws its trained numbers as means and covariances (:mod:`.parameterisation`)."""

    def __init__(self, model, height, width):
        self.model, self.height, self.width = model, height, width

    def forward(self, params, lam) -> tuple:
        return self.model.draw(params, self.height, self.width), lam, params

    def backward(self, grads, params) -> tuple:
        return self.model.backward(params, grads, self.height, self.width), None
