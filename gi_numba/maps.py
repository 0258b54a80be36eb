"""Parameter maps: from the numbers training changes to the Gaussians the rasteriser draws (ALGORITHM.md §1, §6).

A phase of training (:class:`gi_numba.training.Phase`) trains some numbers
and draws others. A *map* is the differentiable function between them, with
four methods and no state that a call could leave behind:

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

:class:`IdentityMap` is GaussianImage++'s representation fit;
:class:`SigmoidColourMap` the codec's warm-up; :class:`ParameterMap` the
GaussianImage baselines; :class:`gi_numba.quantize.QuantizedMap`
quantisation-aware training.
"""

from .layout import COLOUR
from .parameterisation import sigmoid


class Map:
    """What the maps without numbers of their own share: nothing to step, nothing to snapshot."""

    def step(self, own_grads, iteration):
        pass

    def snapshot(self):
        return None


class IdentityMap(Map):
    """The trained numbers are the drawn ones (GaussianImage++'s representation fit)."""

    def forward(self, params, lam):
        return params, lam, None

    def backward(self, grads, context):
        return grads, None


class SigmoidColourMap(Map):
    """Compression warm-up: colours are trained as logits and drawn as ``sigmoid(logit)`` (ALGORITHM.md §1)."""

    def forward(self, params, lam):
        drawn = params.copy()
        colours = sigmoid(params[:, COLOUR])
        drawn[:, COLOUR] = colours
        return drawn, lam, colours

    def backward(self, grads, colours):
        grads[:, COLOUR] *= colours * (1.0 - colours)
        return grads, None


class ParameterMap(Map):
    """A GaussianImage baseline: draws its trained numbers as means and covariances (:mod:`.parameterisation`)."""

    def __init__(self, model, height, width):
        self.model, self.height, self.width = model, height, width

    def forward(self, params, lam):
        return self.model.draw(params, self.height, self.width), lam, params

    def backward(self, grads, params):
        return self.model.backward(params, grads, self.height, self.width), None
