"""Quantisation of the Gaussians' attributes, with straight-through gradients (docs/algorithm.md §6).

What is quantised is the file's coding (:mod:`gi_numba.coding`). Per
attribute, in the paper's coding (a version-1 file):

- positions ``(x, y)``: LSQ+, 12 bits, one learned step and offset per channel;
- variances ``(a', c')`` of the filtered covariance: log-uniform, 10 bits,
  ``q = clamp(round((ln(|v| + 1e-6) - beta) / s))`` with ``beta, s`` from the
  current min/max of the log values (not learned);
- covariance ``b'``: LSQ+, 10 bits;
- colours after the sigmoid: LSQ+, 6 bits per channel.

The correlation + YCoCg coding of versions 2 and 3 (our departure,
docs/format.md) codes the covariance term as the correlation's
``t = atanh(b' / sqrt(a'c'))`` (LSQ+, 6 bits), the variances at 6 bits and
the colour in YCoCg (LSQ+ per channel, 6 bits).

LSQ+ codes are ``q = clamp(round((v - beta) / s), 0, 2^bits - 1)`` and values
``v^ = q s + beta``. With the straight-through estimator (``d round(x)/dx = 1``)
the gradients are, where ``q`` is not clamped, ``dv^/dv = 1``,
``dv^/ds = q - (v - beta)/s``, ``dv^/dbeta = 0``; where it is clamped,
``dv^/dv = 0``, ``dv^/ds = q``, ``dv^/dbeta = 1``.

:class:`QuantizedMap` applies all of this between the trained parameters and
the rasteriser during quantisation-aware training; :func:`quantize` and
:func:`dequantize` turn a model into integer codes and back, identically on
the encoder and the decoder side (quantiser parameters are rounded to float32
first, as they are stored).
"""

from dataclasses import dataclass, field

import numpy as np

from .bitstream.formats import format_of
from .codes import QuantizedGaussians, QuantizerParams, float32
from .coding import LOG_EPS, ROLES
from .defaults import QAT_LR, QAT_LR_DECAY_EVERY
from .layout import COLOUR, COV, MEAN, filtered_covariances
from .optim import Adam, step_decay
from .parameterisation import positive_definite, sigmoid


def lsq_init(values, bits) -> tuple:
    """LSQ+ step and offset from the data: ``s = (max - min) / (2^bits - 1)``, ``beta = min``."""
    low, high = values.min(axis=0), values.max(axis=0)
    step = (high - low) / (2 ** bits - 1)
    return float32(np.where(step > 0, step, 1.0)), float32(low)


def lsq_forward(values, step, offset, bits) -> tuple:
    """Codes, de-quantised values and the unrounded positions ``(v - beta) / s`` (tutorial step 7)."""
    scaled = (values - offset) / step
    codes = np.clip(np.rint(scaled), 0, 2 ** bits - 1)
    return codes, codes * step + offset, scaled


def lsq_backward(grad, codes, scaled, bits) -> tuple:
    """Straight-through gradients of LSQ+ for ``v``, the step and the offset (summed per channel; tutorial step 7)."""
    inside = (scaled >= -0.5) & (scaled <= 2 ** bits - 0.5)
    grad_values = np.where(inside, grad, 0.0)
    grad_step = np.sum(grad * np.where(inside, codes - scaled, codes), axis=0)
    grad_offset = np.sum(np.where(inside, 0.0, grad), axis=0)
    return grad_values, grad_step, grad_offset


def log_init(values, bits) -> tuple:
    """Step ``s`` and offset ``beta`` of the log-uniform quantiser, per channel, from the data's log range."""
    logs = np.log(np.abs(values) + LOG_EPS)
    low, high = logs.min(axis=0), logs.max(axis=0)
    step = (high - low) / (2 ** bits - 1)
    return float32(np.where(step > 0, step, 1.0)), float32(low)


def log_forward(values, step, offset, bits) -> tuple:
    """Codes and de-quantised values ``exp(q s + beta)`` of the log-uniform quantiser."""
    logs = np.log(np.abs(values) + LOG_EPS)
    codes = np.clip(np.rint((logs - offset) / step), 0, 2 ** bits - 1)
    return codes, np.exp(codes * step + offset)


def render_attributes(params, lam) -> tuple:
    """The attributes that are quantised: means, filtered covariance, sigmoid colours (float64)."""
    p = params.astype(np.float64)
    return p[:, MEAN], filtered_covariances(params, lam), sigmoid(p[:, COLOUR])


def _attribute_values(params, lam, coding):
    """Each attribute's ``(N, k)`` float64 values before quantisation, by role, in ``coding``."""
    return coding.coded_values(*render_attributes(params, lam))


def initial_quantizers(params, lam, bits=None, version=1) -> QuantizerParams:
    """Quantiser parameters initialised from the data (docs/algorithm.md §6), for a file of ``version``."""
    coding = format_of(version).coding
    bits = dict(coding.default_bits, **(bits or {}))
    values = _attribute_values(params, lam, coding)
    fields = {}
    for a in coding.attributes:
        init = lsq_init if a.kind == "lsq" else log_init
        fields[f"{a.name}_step"], fields[f"{a.name}_offset"] = init(values[a.name], bits[a.name])
    return QuantizerParams(bits, **fields, version=version)


@dataclass
class Quantised:
    """Every attribute of ``N`` Gaussians through its quantiser: what QAT draws and what a file stores.

    ``quantizers`` carry the variances' log range of these Gaussians;
    ``codes`` and ``values`` (de-quantised) are by attribute name; ``scaled``
    holds ``(v - offset) / step`` of the LSQ+ attributes for their STE
    gradients, and ``inputs`` the values before quantisation (in versions 2, 3
    also the unclipped ``"correlation"``). ``streams`` is what a rate term
    measured of the codes (:meth:`gi_numba.rate.RateTerm.measure`), if one did.
    """

    quantizers: QuantizerParams
    codes: dict
    values: dict
    scaled: dict
    inputs: dict
    streams: list = None

    def gaussians(self) -> QuantizedGaussians:
        """The codes as the :class:`QuantizedGaussians` a file stores (every Gaussian of this pass)."""
        return QuantizedGaussians(self.quantizers, *(self.codes[role].astype(np.uint16) for role in ROLES))


def quantise(params, lam, quantizers) -> "Quantised":
    """The one quantiser code path, for training and for files: every attribute's codes and values.

    The LSQ+ attributes use ``quantizers``' steps and offsets; the variances'
    log range is taken from these Gaussians (:func:`log_init`), as in training.
    """
    coding = format_of(quantizers.version).coding
    inputs = _attribute_values(params, lam, coding)
    q = QuantizerParams(quantizers.bits, **{k: getattr(quantizers, k) for k in QuantizerParams.ARRAYS},
                        version=quantizers.version)
    q.variance_step, q.variance_offset = log_init(inputs["variance"], q.bits["variance"])
    codes, values, scaled = {}, {}, {}
    for a in coding.attributes:
        step, offset = getattr(q, f"{a.name}_step"), getattr(q, f"{a.name}_offset")
        if a.kind == "lsq":
            codes[a.name], values[a.name], scaled[a.name] = lsq_forward(inputs[a.name], step, offset, q.bits[a.name])
        else:
            codes[a.name], values[a.name] = log_forward(inputs[a.name], step, offset, q.bits[a.name])
    return Quantised(q, codes, values, scaled, inputs)


def quantize(params, lam, quantizers) -> QuantizedGaussians:
    """Codes of every Gaussian (:func:`quantise` with float32 quantiser parameters, as a file stores them),
    dropping those whose de-quantised covariance is not positive definite (in versions 2, 3 all are)."""
    result = quantise(params, lam, quantizers.copy())
    codes = result.gaussians()
    keep = positive_definite(dequantize(codes)[:, COV].astype(np.float64))
    return QuantizedGaussians(result.quantizers, codes.position[keep], codes.variance[keep],
                              codes.covariance[keep], codes.colour[keep])


def dequantize(codes) -> np.ndarray:
    """Render-ready ``(N, 8)`` float32 parameters (filter folded in, colours after the sigmoid)."""
    q = codes.quantizers
    values = dict(position=codes.position * q.position_step + q.position_offset,
                  variance=np.exp(codes.variance * q.variance_step + q.variance_offset),
                  covariance=codes.covariance * q.covariance_step + q.covariance_offset,
                  colour=codes.colour * q.colour_step + q.colour_offset)
    return format_of(q.version).coding.drawn(values)


@dataclass
class QuantizedMap:
    """Quantisation-aware training: renders de-quantised attributes, passes STE gradients back.

    A parameter map (:mod:`gi_numba.maps`): ``forward`` maps the trained
    ``(N, 8)`` parameters (colours as logits) to the de-quantised parameters
    the rasteriser draws, with the variances' log range taken from the data
    of that call; ``backward`` maps the rasteriser's gradients back to the
    trained parameters and returns the gradients of the learned quantiser
    parameters, which ``step`` applies with their own Adam (lr 0.001, halved
    every 10 000 iterations). Only ``step`` changes the map. With a ``rate``
    (:class:`gi_numba.rate.RateTerm`) it trains ``D + lambda R``: the rate's
    gradients join the distortion's and :meth:`penalty` is its value.
    """

    quantizers: QuantizerParams
    lr: float = QAT_LR
    lr_decay_every: int = QAT_LR_DECAY_EVERY
    rate: object = None
    _adam: Adam = field(default=None, init=False, repr=False)

    def __post_init__(self):
        learned = np.concatenate([np.ravel(getattr(self.quantizers, k)) for k in QuantizerParams.LEARNED])
        self._adam = Adam.zeros_like(learned.astype(np.float32))

    def forward(self, params, lam) -> tuple:
        result = quantise(params, lam, self.quantizers)
        if self.rate is not None:
            result.streams = self.rate.measure(result)
        coding = format_of(self.quantizers.version).coding
        return coding.drawn(result.values), np.zeros(params.shape[0], np.float32), result

    def backward(self, grad, result) -> tuple:
        bits, coding = self.quantizers.bits, format_of(self.quantizers.version).coding
        grad = grad.astype(np.float64)
        g_hat = coding.value_gradients(grad, result.values)
        own, through = {}, {}
        for a in ("position", "covariance", "colour"):
            through[a], own[f"{a}_step"], own[f"{a}_offset"] = lsq_backward(
                g_hat[a], result.codes[a], result.scaled[a], bits[a])
        variances = result.inputs["variance"]
        through["variance"] = (g_hat["variance"] * result.values["variance"] * np.sign(variances)
                               / (np.abs(variances) + LOG_EPS))
        if self.rate is not None:
            self.rate.add_gradients(result, through, own)
        return coding.parameter_gradients(through, result.inputs).astype(np.float32), own

    def penalty(self, result) -> float:
        """The loss beyond the squared error: the rate term, if this map trains with one (else 0)."""
        return 0.0 if self.rate is None else self.rate.penalty(result)

    def step(self, own_grads, iteration) -> None:
        """One Adam step on the learned quantiser parameters with the gradients :meth:`backward` returned."""
        q = self.quantizers
        values = np.concatenate([np.ravel(getattr(q, k)) for k in QuantizerParams.LEARNED]).astype(np.float32)
        grads = np.concatenate([np.ravel(own_grads[k]) for k in QuantizerParams.LEARNED]).astype(np.float32)
        self._adam.step(values, grads, step_decay(self.lr, iteration - 1, self.lr_decay_every))
        start = 0
        for k in QuantizerParams.LEARNED:
            size = np.size(getattr(q, k))
            setattr(q, k, values[start:start + size].astype(np.float64))  # float32 values, as stored
            start += size
        for k in ("position_step", "covariance_step", "colour_step"):
            setattr(q, k, float32(np.maximum(getattr(q, k), 1e-8)))

    def snapshot(self) -> QuantizerParams:
        """A copy of the quantiser parameters (to restore the best state)."""
        return self.quantizers.copy()
