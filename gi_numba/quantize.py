"""Quantisation of the Gaussians' attributes, with straight-through gradients (ALGORITHM.md §6).

Per attribute:

- positions ``(x, y)``: LSQ+, 12 bits, one learned step and offset per channel;
- variances ``(a', c')`` of the filtered covariance: log-uniform, 10 bits,
  ``q = clamp(round((ln(|v| + 1e-6) - beta) / s))`` with ``beta, s`` from the
  current min/max of the log values (not learned);
- covariance ``b'``: LSQ+, 10 bits;
- colours after the sigmoid: LSQ+, 6 bits per channel.

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

from .defaults import BITS, QAT_LR, QAT_LR_DECAY_EVERY
from .layout import COLOUR, COV, MEAN, N_PARAMS, TRIPLE_VARIANCES, VARIANCES
from .parameterisation import positive_definite, sigmoid
from .optim import Adam, step_decay

LOG_EPS = 1e-6

#: Default bit depths (ALGORITHM.md §6): 2*12 + 3*10 + 3*6 = 72 bits per Gaussian.
DEFAULT_BITS = BITS


def _float32(x):
    """Round to float32 (as stored in a file) but keep computing in float64."""
    return np.asarray(x, np.float32).astype(np.float64)


def lsq_init(values, bits):
    """LSQ+ step and offset from the data: ``s = (max - min) / (2^bits - 1)``, ``beta = min``."""
    low, high = values.min(axis=0), values.max(axis=0)
    step = (high - low) / (2 ** bits - 1)
    return _float32(np.where(step > 0, step, 1.0)), _float32(low)


def lsq_forward(values, step, offset, bits):
    """Codes, de-quantised values and the unrounded positions ``(v - beta) / s`` (tutorial step 7)."""
    scaled = (values - offset) / step
    codes = np.clip(np.rint(scaled), 0, 2 ** bits - 1)
    return codes, codes * step + offset, scaled


def lsq_backward(grad, codes, scaled, bits):
    """Straight-through gradients of LSQ+ for ``v``, the step and the offset (summed per channel; tutorial step 7)."""
    inside = (scaled >= -0.5) & (scaled <= 2 ** bits - 0.5)
    grad_values = np.where(inside, grad, 0.0)
    grad_step = np.sum(grad * np.where(inside, codes - scaled, codes), axis=0)
    grad_offset = np.sum(np.where(inside, 0.0, grad), axis=0)
    return grad_values, grad_step, grad_offset


def log_range(values, bits):
    """Offset ``beta`` and step ``s`` of the log-uniform quantiser, per channel, from the data."""
    logs = np.log(np.abs(values) + LOG_EPS)
    low, high = logs.min(axis=0), logs.max(axis=0)
    step = (high - low) / (2 ** bits - 1)
    return _float32(low), _float32(np.where(step > 0, step, 1.0))


def log_forward(values, offset, step, bits):
    """Codes and de-quantised values ``exp(q s + beta)`` of the log-uniform quantiser."""
    logs = np.log(np.abs(values) + LOG_EPS)
    codes = np.clip(np.rint((logs - offset) / step), 0, 2 ** bits - 1)
    return codes, np.exp(codes * step + offset)


@dataclass
class QuantizerParams:
    """Everything besides the codes that the decoder needs to de-quantise (stored as float32)."""

    bits: dict
    position_step: np.ndarray
    position_offset: np.ndarray
    variance_offset: np.ndarray
    variance_step: np.ndarray
    covariance_step: np.ndarray
    covariance_offset: np.ndarray
    colour_step: np.ndarray
    colour_offset: np.ndarray

    ARRAYS = ("position_step", "position_offset", "variance_offset", "variance_step", "covariance_step",
              "covariance_offset", "colour_step", "colour_offset")
    LEARNED = ("position_step", "position_offset", "covariance_step", "covariance_offset",
               "colour_step", "colour_offset")

    def copy(self):
        """An independent copy, every parameter rounded to float32 as a file stores them."""
        return QuantizerParams(dict(self.bits), **{k: _float32(getattr(self, k)) for k in self.ARRAYS})


def render_attributes(params, lam):
    """The attributes that are quantised: means, filtered covariance, sigmoid colours (float64)."""
    p = params.astype(np.float64)
    cov = np.stack([p[:, 2] + lam, p[:, 3], p[:, 4] + lam], axis=1)
    return p[:, MEAN], cov, sigmoid(p[:, COLOUR])


def initial_quantizers(params, lam, bits=None):
    """Quantiser parameters initialised from the data (ALGORITHM.md §6)."""
    bits = dict(DEFAULT_BITS, **(bits or {}))
    means, cov, colours = render_attributes(params, lam)
    pos_step, pos_offset = lsq_init(means, bits["position"])
    var_offset, var_step = log_range(cov[:, TRIPLE_VARIANCES], bits["variance"])
    cov_step, cov_offset = lsq_init(cov[:, 1:2], bits["covariance"])
    col_step, col_offset = lsq_init(colours, bits["colour"])
    return QuantizerParams(bits, pos_step, pos_offset, var_offset, var_step, cov_step, cov_offset,
                           col_step, col_offset)


@dataclass
class QuantizedGaussians:
    """Integer codes of ``N`` Gaussians plus their quantiser parameters: the content of a file."""

    quantizers: QuantizerParams
    position: np.ndarray    # (N, 2) codes of x, y
    variance: np.ndarray    # (N, 2) codes of a', c'
    covariance: np.ndarray  # (N, 1) codes of b'
    colour: np.ndarray      # (N, 3) codes of r, g, b

    @property
    def n_gaussians(self):
        return int(self.position.shape[0])


def quantize(params, lam, quantizers):
    """Codes of every Gaussian, dropping those whose de-quantised covariance is not positive definite.

    The log range of the variances is taken from ``params`` itself, as in training.
    """
    q = quantizers.copy()
    means, cov, colours = render_attributes(params, lam)
    q.variance_offset, q.variance_step = log_range(cov[:, TRIPLE_VARIANCES], q.bits["variance"])
    position, _, _ = lsq_forward(means, q.position_step, q.position_offset, q.bits["position"])
    variance, _ = log_forward(cov[:, TRIPLE_VARIANCES], q.variance_offset, q.variance_step, q.bits["variance"])
    covariance, _, _ = lsq_forward(cov[:, 1:2], q.covariance_step, q.covariance_offset, q.bits["covariance"])
    colour, _, _ = lsq_forward(colours, q.colour_step, q.colour_offset, q.bits["colour"])
    codes = QuantizedGaussians(q, *(c.astype(np.uint16) for c in (position, variance, covariance, colour)))
    keep = positive_definite(dequantize(codes)[:, COV].astype(np.float64))
    return QuantizedGaussians(q, codes.position[keep], codes.variance[keep], codes.covariance[keep],
                              codes.colour[keep])


def dequantize(codes):
    """Render-ready ``(N, 8)`` float32 parameters (filter folded in, colours after the sigmoid)."""
    q = codes.quantizers
    out = np.zeros((codes.n_gaussians, N_PARAMS), np.float64)
    out[:, MEAN] = codes.position * q.position_step + q.position_offset
    variances = np.exp(codes.variance * q.variance_step + q.variance_offset)
    out[:, 2], out[:, 4] = variances[:, 0], variances[:, 1]
    out[:, 3] = (codes.covariance * q.covariance_step + q.covariance_offset)[:, 0]
    out[:, COLOUR] = codes.colour * q.colour_step + q.colour_offset
    return out.astype(np.float32)


@dataclass
class QuantizedMap:
    """Quantisation-aware training: renders de-quantised attributes, passes STE gradients back.

    A parameter map (:mod:`gi_numba.maps`): ``forward`` maps the trained
    ``(N, 8)`` parameters (colours as logits) to the de-quantised parameters
    the rasteriser draws, with the variances' log range taken from the data
    of that call; ``backward`` maps the rasteriser's gradients back to the
    trained parameters and returns the gradients of the learned quantiser
    parameters, which ``step`` applies with their own Adam (lr 0.001, halved
    every 10 000 iterations). Only ``step`` changes the map.
    """

    quantizers: QuantizerParams
    lr: float = QAT_LR
    lr_decay_every: int = QAT_LR_DECAY_EVERY
    _adam: Adam = field(default=None, init=False, repr=False)

    def __post_init__(self):
        learned = np.concatenate([np.ravel(getattr(self.quantizers, k)) for k in QuantizerParams.LEARNED])
        self._adam = Adam.zeros_like(learned.astype(np.float32))

    def forward(self, params, lam):
        q = self.quantizers
        bits = q.bits
        means, cov, colours = render_attributes(params, lam)
        variance_offset, variance_step = log_range(cov[:, TRIPLE_VARIANCES], bits["variance"])
        pos_codes, pos_hat, pos_scaled = lsq_forward(means, q.position_step, q.position_offset, bits["position"])
        _, var_hat = log_forward(cov[:, TRIPLE_VARIANCES], variance_offset, variance_step, bits["variance"])
        cov_codes, cov_hat, cov_scaled = lsq_forward(cov[:, 1:2], q.covariance_step, q.covariance_offset,
                                                     bits["covariance"])
        col_codes, col_hat, col_scaled = lsq_forward(colours, q.colour_step, q.colour_offset, bits["colour"])
        out = np.empty((params.shape[0], N_PARAMS), np.float32)
        out[:, MEAN] = pos_hat
        out[:, 2], out[:, 3], out[:, 4] = var_hat[:, 0], cov_hat[:, 0], var_hat[:, 1]
        out[:, COLOUR] = col_hat
        context = (cov, var_hat, colours, (pos_codes, pos_scaled), (cov_codes, cov_scaled), (col_codes, col_scaled))
        return out, np.zeros(params.shape[0], np.float32), context

    def backward(self, grad, context):
        cov, var_hat, colours, pos, covq, col = context
        bits = self.quantizers.bits
        grad = grad.astype(np.float64)
        out = np.zeros_like(grad)
        out[:, MEAN], g_pos_step, g_pos_offset = lsq_backward(grad[:, MEAN], *pos, bits["position"])
        signs = np.sign(cov[:, TRIPLE_VARIANCES])
        g_var = grad[:, VARIANCES] * var_hat * signs / (np.abs(cov[:, TRIPLE_VARIANCES]) + LOG_EPS)
        out[:, 2], out[:, 4] = g_var[:, 0], g_var[:, 1]
        g_b, g_cov_step, g_cov_offset = lsq_backward(grad[:, 3:4], *covq, bits["covariance"])
        out[:, 3] = g_b[:, 0]
        g_col, g_col_step, g_col_offset = lsq_backward(grad[:, COLOUR], *col, bits["colour"])
        out[:, COLOUR] = g_col * colours * (1.0 - colours)
        own = dict(position_step=g_pos_step, position_offset=g_pos_offset, covariance_step=g_cov_step,
                   covariance_offset=g_cov_offset, colour_step=g_col_step, colour_offset=g_col_offset)
        return out.astype(np.float32), own

    def step(self, own_grads, iteration):
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
            setattr(q, k, _float32(np.maximum(getattr(q, k), 1e-8)))

    def snapshot(self):
        """A copy of the quantiser parameters (to restore the best state)."""
        return self.quantizers.copy()
