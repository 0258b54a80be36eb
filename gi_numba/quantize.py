"""Quantisation of the Gaussians' attributes, with straight-through gradients (ALGORITHM.md §6).

Per attribute, in a version-1 file (the paper's coding):

- positions ``(x, y)``: LSQ+, 12 bits, one learned step and offset per channel;
- variances ``(a', c')`` of the filtered covariance: log-uniform, 10 bits,
  ``q = clamp(round((ln(|v| + 1e-6) - beta) / s))`` with ``beta, s`` from the
  current min/max of the log values (not learned);
- covariance ``b'``: LSQ+, 10 bits;
- colours after the sigmoid: LSQ+, 6 bits per channel.

A version-2 or -3 file (our departure, docs/format.md) codes the same attributes
in coordinates whose precision follows what they draw: the covariance term
as the correlation's ``t = atanh(b' / sqrt(a'c'))`` (LSQ+, 6 bits; drawn as
``b^ = tanh(t^) sqrt(a^ c^)``, so a small Gaussian's ``b'`` is as finely
coded as a large one's, and every decoded covariance is positive definite),
the variances at 6 bits, and the colour in YCoCg (LSQ+ per channel, 6 bits),
which decorrelates the channels so that the chroma codes cost less.

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

from .defaults import BITS, BITS_V2, QAT_LR, QAT_LR_DECAY_EVERY
from .layout import (COLOUR, COV, COV_XY, MEAN, N_PARAMS, TRIPLE_COV_XY, TRIPLE_VARIANCES, VARIANCES,
                     filtered_covariances)
from .parameterisation import positive_definite, sigmoid
from .optim import Adam, step_decay

LOG_EPS = 1e-6


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


def log_init(values, bits):
    """Step ``s`` and offset ``beta`` of the log-uniform quantiser, per channel, from the data's log range."""
    logs = np.log(np.abs(values) + LOG_EPS)
    low, high = logs.min(axis=0), logs.max(axis=0)
    step = (high - low) / (2 ** bits - 1)
    return _float32(np.where(step > 0, step, 1.0)), _float32(low)


def log_forward(values, step, offset, bits):
    """Codes and de-quantised values ``exp(q s + beta)`` of the log-uniform quantiser."""
    logs = np.log(np.abs(values) + LOG_EPS)
    codes = np.clip(np.rint((logs - offset) / step), 0, 2 ** bits - 1)
    return codes, np.exp(codes * step + offset)


@dataclass(frozen=True)
class Attribute:
    """One quantised attribute of a Gaussian: its quantiser (``"lsq"`` learned, ``"log"`` from the data),
    its default bit depth and the names of its streams in a ``.gi`` file (in file order)."""

    name: str
    kind: str
    default_bits: int
    streams: tuple


#: The quantised attributes of a version-1 file, in file order (ALGORITHM.md §6; ``y`` is stored as sorted
#: differences ``dy``).
ATTRIBUTES = (Attribute("position", "lsq", BITS["position"], ("dy", "x")),
              Attribute("variance", "log", BITS["variance"], ("a", "c")),
              Attribute("covariance", "lsq", BITS["covariance"], ("b",)),
              Attribute("colour", "lsq", BITS["colour"], ("red", "green", "blue")))
#: The same attributes in a version-2 file: the covariance term as the correlation's ``atanh``, colour in YCoCg.
ATTRIBUTES_V2 = (Attribute("position", "lsq", BITS_V2["position"], ("dy", "x")),
                 Attribute("variance", "log", BITS_V2["variance"], ("a", "c")),
                 Attribute("covariance", "lsq", BITS_V2["covariance"], ("corr",)),
                 Attribute("colour", "lsq", BITS_V2["colour"], ("Y", "Co", "Cg")))
#: The attribute table of each ``.gi`` format version (version 3 codes as version 2, in a smaller container).
CODINGS = {1: ATTRIBUTES, 2: ATTRIBUTES_V2, 3: ATTRIBUTES_V2}
#: Default bit depths (ALGORITHM.md §6): 2*12 + 3*10 + 3*6 = 72 bits per Gaussian.
DEFAULT_BITS = {a.name: a.default_bits for a in ATTRIBUTES}


def default_bits(version):
    """The default bit depth of each attribute in a file of ``version`` (fixed length: v1 72 bits, v2 60)."""
    return {a.name: a.default_bits for a in CODINGS[version]}


def stream_names(version):
    """The names of a file's streams, in file order."""
    return tuple(name for a in CODINGS[version] for name in a.streams)


#: YCoCg from RGB (rows Y, Co, Cg), and back: a fixed, exactly invertible decorrelation of the colour (v2).
RGB_TO_YCOCG = np.array([[0.25, 0.5, 0.25], [0.5, 0.0, -0.5], [-0.25, 0.5, -0.25]])
YCOCG_TO_RGB = np.array([[1.0, 1.0, -1.0], [1.0, 0.0, 1.0], [1.0, -1.0, -1.0]])
#: Correlations are coded as ``atanh`` of at most this magnitude (an axis ratio of about 45).
MAX_CORRELATION = 0.999


@dataclass
class QuantizerParams:
    """Everything besides the codes that the decoder needs to de-quantise (stored as float32).

    Each attribute has a step and an offset (``<name>_step``, ``<name>_offset``):
    learned for the LSQ+ attributes, the data's log range for the variances.
    ``version`` is the file format whose coding they quantise (:data:`CODINGS`).
    """

    bits: dict
    position_step: np.ndarray
    position_offset: np.ndarray
    variance_step: np.ndarray
    variance_offset: np.ndarray
    covariance_step: np.ndarray
    covariance_offset: np.ndarray
    colour_step: np.ndarray
    colour_offset: np.ndarray
    version: int = 1

    ARRAYS = tuple(f"{a.name}_{part}" for a in ATTRIBUTES for part in ("step", "offset"))
    LEARNED = tuple(f"{a.name}_{part}" for a in ATTRIBUTES if a.kind == "lsq" for part in ("step", "offset"))

    def copy(self):
        """An independent copy, every parameter rounded to float32 as a file stores them."""
        return QuantizerParams(dict(self.bits), **{k: _float32(getattr(self, k)) for k in self.ARRAYS},
                               version=self.version)


def render_attributes(params, lam):
    """The attributes that are quantised: means, filtered covariance, sigmoid colours (float64)."""
    p = params.astype(np.float64)
    return p[:, MEAN], filtered_covariances(params, lam), sigmoid(p[:, COLOUR])


def _attribute_values(params, lam, version):
    """Each attribute's ``(N, k)`` float64 values before quantisation, by name, in the coding of ``version``."""
    means, cov, colours = render_attributes(params, lam)
    values = dict(position=means, variance=cov[:, TRIPLE_VARIANCES], covariance=cov[:, TRIPLE_COV_XY],
                  colour=colours)
    if version >= 2:
        values["correlation"] = _correlation(cov)
        values["covariance"] = np.arctanh(np.clip(values["correlation"], -MAX_CORRELATION, MAX_CORRELATION))[:, None]
        values["colour"] = colours @ RGB_TO_YCOCG.T
    return values


def _correlation(cov):
    """``b' / sqrt(a'c')`` of filtered covariance triples."""
    a, b, c = np.abs(cov[:, 0]) + LOG_EPS, cov[:, 1], np.abs(cov[:, 2]) + LOG_EPS
    return b / np.sqrt(a * c)


def initial_quantizers(params, lam, bits=None, version=1):
    """Quantiser parameters initialised from the data (ALGORITHM.md §6), for a file of ``version``."""
    bits = dict(default_bits(version), **(bits or {}))
    values = _attribute_values(params, lam, version)
    fields = {}
    for a in CODINGS[version]:
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

    def gaussians(self):
        """The codes as the :class:`QuantizedGaussians` a file stores (every Gaussian of this pass)."""
        return QuantizedGaussians(self.quantizers, *(self.codes[a.name].astype(np.uint16) for a in ATTRIBUTES))


def quantise(params, lam, quantizers):
    """The one quantiser code path, for training and for files: every attribute's codes and values.

    The LSQ+ attributes use ``quantizers``' steps and offsets; the variances'
    log range is taken from these Gaussians (:func:`log_init`), as in training.
    """
    inputs = _attribute_values(params, lam, quantizers.version)
    q = QuantizerParams(quantizers.bits, **{k: getattr(quantizers, k) for k in QuantizerParams.ARRAYS},
                        version=quantizers.version)
    q.variance_step, q.variance_offset = log_init(inputs["variance"], q.bits["variance"])
    codes, values, scaled = {}, {}, {}
    for a in CODINGS[q.version]:
        step, offset = getattr(q, f"{a.name}_step"), getattr(q, f"{a.name}_offset")
        if a.kind == "lsq":
            codes[a.name], values[a.name], scaled[a.name] = lsq_forward(inputs[a.name], step, offset, q.bits[a.name])
        else:
            codes[a.name], values[a.name] = log_forward(inputs[a.name], step, offset, q.bits[a.name])
    return Quantised(q, codes, values, scaled, inputs)


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
    """Codes of every Gaussian (:func:`quantise` with float32 quantiser parameters, as a file stores them),
    dropping those whose de-quantised covariance is not positive definite (in versions 2, 3 all are)."""
    result = quantise(params, lam, quantizers.copy())
    codes = result.gaussians()
    keep = positive_definite(dequantize(codes)[:, COV].astype(np.float64))
    return QuantizedGaussians(result.quantizers, codes.position[keep], codes.variance[keep],
                              codes.covariance[keep], codes.colour[keep])


def dequantize(codes):
    """Render-ready ``(N, 8)`` float32 parameters (filter folded in, colours after the sigmoid)."""
    q = codes.quantizers
    values = dict(position=codes.position * q.position_step + q.position_offset,
                  variance=np.exp(codes.variance * q.variance_step + q.variance_offset),
                  covariance=codes.covariance * q.covariance_step + q.covariance_offset,
                  colour=codes.colour * q.colour_step + q.colour_offset)
    return drawn_parameters(values, q.version)


def drawn_parameters(values, version, dtype=np.float32):
    """The ``(N, 8)`` parameters (float32 unless ``dtype``) that de-quantised attribute ``values`` (by name) draw.

    Version 1 draws them as they are; versions 2, 3 turn the correlation back
    into ``b^ = tanh(t^) sqrt(a^ c^)`` and YCoCg back into RGB.
    """
    n = values["position"].shape[0]
    out = np.empty((n, N_PARAMS), dtype)
    out[:, MEAN] = values["position"]
    out[:, VARIANCES] = values["variance"]
    if version >= 2:
        a, c = values["variance"][:, 0], values["variance"][:, 1]
        out[:, COV_XY] = (np.tanh(values["covariance"][:, 0]) * np.sqrt(a * c))[:, None]
        out[:, COLOUR] = values["colour"] @ YCOCG_TO_RGB.T
    else:
        out[:, COV_XY] = values["covariance"]
        out[:, COLOUR] = values["colour"]
    return out


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

    def forward(self, params, lam):
        result = quantise(params, lam, self.quantizers)
        if self.rate is not None:
            result.streams = self.rate.measure(result)
        return drawn_parameters(result.values, self.quantizers.version), np.zeros(params.shape[0], np.float32), result

    def backward(self, grad, result):
        bits, version = self.quantizers.bits, self.quantizers.version
        grad = grad.astype(np.float64)
        g_hat = _coded_value_gradients(grad, result.values, version)
        own, through = {}, {}
        for a in ("position", "covariance", "colour"):
            through[a], own[f"{a}_step"], own[f"{a}_offset"] = lsq_backward(
                g_hat[a], result.codes[a], result.scaled[a], bits[a])
        variances = result.inputs["variance"]
        through["variance"] = (g_hat["variance"] * result.values["variance"] * np.sign(variances)
                               / (np.abs(variances) + LOG_EPS))
        if self.rate is not None:
            self.rate.add_gradients(result, through, own)
        return _parameter_gradients(through, result.inputs, version).astype(np.float32), own

    def penalty(self, result):
        """The loss beyond the squared error: the rate term, if this map trains with one (else 0)."""
        return 0.0 if self.rate is None else self.rate.penalty(result)

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


def _coded_value_gradients(grad, values, version):
    """The loss gradients of the de-quantised coded ``values`` (by attribute) from those of the drawn parameters.

    Version 1 draws the coded values as they are. Version 2 draws
    ``b^ = r^ sqrt(a^ c^)``, ``r^ = tanh(t^)``: the variances get their own
    gradient plus ``g_b r^ sqrt(c^/a^) / 2`` (and ``a <-> c``), ``t^`` gets
    ``g_b sqrt(a^c^) (1 - r^2)``, and YCoCg, linear, ``g_rgb^ M^-1``.
    """
    g = dict(position=grad[:, MEAN], variance=grad[:, VARIANCES], covariance=grad[:, COV_XY],
             colour=grad[:, COLOUR])
    if version >= 2:
        a_hat, c_hat = values["variance"][:, 0], values["variance"][:, 1]
        r_hat = np.tanh(values["covariance"][:, 0])
        g_b = g["covariance"][:, 0]
        g["variance"] = g["variance"] + np.stack([g_b * r_hat * np.sqrt(c_hat / a_hat) / 2,
                                                  g_b * r_hat * np.sqrt(a_hat / c_hat) / 2], axis=1)
        g["covariance"] = (g_b * np.sqrt(a_hat * c_hat) * (1.0 - r_hat ** 2))[:, None]
        g["colour"] = g["colour"] @ YCOCG_TO_RGB
    return g


def _parameter_gradients(through, inputs, version):
    """``(N, 8)`` gradients of the trained parameters from those of the coded values before quantisation.

    ``through`` holds them by attribute (the variances' already through
    their log quantiser). Colours are trained as logits. In versions 2, 3 the
    correlation ``r = b / sqrt(a c)`` (coded as ``t = atanh(r)``) reaches
    ``b`` as ``g_r / sqrt(ac)`` and ``a``, ``c`` as ``-g_r r / (2a)``,
    ``-g_r r / (2c)`` (zero where ``r`` is clipped), and YCoCg reaches RGB
    as ``g_YCoCg M``.
    """
    out = np.zeros((through["position"].shape[0], N_PARAMS))
    out[:, MEAN] = through["position"]
    out[:, VARIANCES] = through["variance"]
    if version >= 2:
        r = inputs["correlation"]
        g_r = np.where(np.abs(r) < MAX_CORRELATION, through["covariance"][:, 0] / (1.0 - r ** 2), 0.0)
        a, c = np.abs(inputs["variance"][:, 0]) + LOG_EPS, np.abs(inputs["variance"][:, 1]) + LOG_EPS
        out[:, COV_XY] = (g_r / np.sqrt(a * c))[:, None]
        out[:, VARIANCES] -= np.stack([g_r * r / (2 * a), g_r * r / (2 * c)], axis=1)
        colours, g_colours = inputs["colour"] @ YCOCG_TO_RGB.T, through["colour"] @ RGB_TO_YCOCG
    else:
        out[:, COV_XY] = through["covariance"]
        colours, g_colours = inputs["colour"], through["colour"]
    out[:, COLOUR] = g_colours * colours * (1.0 - colours)
    return out
