"""Codings: which numbers of a Gaussian a file quantises, and how they draw (docs/algorithm.md §6; docs/format.md).

A coding names the attributes a file quantises — always four, in the roles
``position``, ``variance``, ``covariance`` and ``colour`` and in that order,
each with its quantiser kind, default bit depth and streams — and owns the
maps between what the rasteriser draws and what is coded:

- :meth:`~Coding.coded_values`: the values to quantise, from the Gaussians'
  means, filtered covariances and sigmoid colours;
- :meth:`~Coding.drawn`: the ``(N, 8)`` parameters that de-quantised values draw;
- :meth:`~Coding.value_gradients` and :meth:`~Coding.parameter_gradients`:
  the backward passes of those two maps, for quantisation-aware training.

:data:`PAPER` codes the attributes as the paper does (``b'`` and RGB);
:data:`CORRELATION_YCOCG` (our departure) codes the covariance term as the
correlation's ``t = atanh(b' / sqrt(a'c'))`` and the colour in YCoCg.
Which file version uses which coding is said once, in
:data:`gi_numba.bitstream.formats.FORMATS`.
"""

from dataclasses import dataclass

import numpy as np

from .defaults import BITS, BITS_V2
from .layout import COLOUR, COV_XY, MEAN, N_PARAMS, TRIPLE_COV_XY, TRIPLE_VARIANCES, VARIANCES

#: The roles of a coding's four attributes, in file order.
ROLES = ("position", "variance", "covariance", "colour")
#: Variances are quantised as ``ln(|v| + LOG_EPS)``.
LOG_EPS = 1e-6
#: YCoCg from RGB (rows Y, Co, Cg), and back: a fixed, exactly invertible decorrelation of the colour.
RGB_TO_YCOCG = np.array([[0.25, 0.5, 0.25], [0.5, 0.0, -0.5], [-0.25, 0.5, -0.25]])
YCOCG_TO_RGB = np.array([[1.0, 1.0, -1.0], [1.0, 0.0, 1.0], [1.0, -1.0, -1.0]])
#: Correlations are coded as ``atanh`` of at most this magnitude (an axis ratio of about 45).
MAX_CORRELATION = 0.999


@dataclass(frozen=True)
class Attribute:
    """One quantised attribute of a Gaussian: its role (:data:`ROLES`), its quantiser (``"lsq"`` learned,
    ``"log"`` from the data), its default bit depth and the names of its streams, in file order."""

    name: str
    kind: str
    default_bits: int
    streams: tuple


class Coding:
    """The interface of a coding; see the module's docstring."""

    name: str
    attributes: tuple

    @property
    def stream_names(self) -> tuple:
        """The names of a file's streams, in file order."""
        return tuple(name for a in self.attributes for name in a.streams)

    @property
    def default_bits(self) -> dict:
        """The default bit depth of each attribute, by role."""
        return {a.name: a.default_bits for a in self.attributes}

    def stream_depths(self, bits: dict) -> list:
        """The bit depth of each stream, in file order, for attribute depths ``bits``."""
        return [bits[a.name] for a in self.attributes for _ in a.streams]

    def coded_values(self, means, cov, colours) -> dict:
        """Each attribute's float64 ``[N, k]`` values before quantisation, by role, from means ``[N, 2]``,
        filtered covariance triples ``[N, 3]`` and sigmoid colours ``[N, 3]``."""
        return dict(position=means, variance=cov[:, TRIPLE_VARIANCES], covariance=cov[:, TRIPLE_COV_XY],
                    colour=colours)

    def drawn(self, values: dict, dtype=np.float32) -> np.ndarray:
        """The ``[N, 8]`` parameters that de-quantised attribute ``values`` (by role) draw."""
        out = np.empty((values["position"].shape[0], N_PARAMS), dtype)
        out[:, MEAN] = values["position"]
        out[:, VARIANCES] = values["variance"]
        out[:, COV_XY] = values["covariance"]
        out[:, COLOUR] = values["colour"]
        return out

    def value_gradients(self, grad, values) -> dict:
        """The loss gradients of the de-quantised ``values`` (by role) from those ``[N, 8]`` of the drawn
        parameters: the backward pass of :meth:`drawn`."""
        return dict(position=grad[:, MEAN], variance=grad[:, VARIANCES], covariance=grad[:, COV_XY],
                    colour=grad[:, COLOUR])

    def parameter_gradients(self, through, inputs) -> np.ndarray:
        """``[N, 8]`` gradients of the trained parameters (colours as logits) from those of the coded values
        before quantisation (``through``, by role; the variances' already through their log quantiser):
        the backward pass of :meth:`coded_values`. ``inputs`` are :meth:`coded_values`' results."""
        out = np.zeros((through["position"].shape[0], N_PARAMS))
        out[:, MEAN] = through["position"]
        out[:, VARIANCES] = through["variance"]
        out[:, COV_XY] = through["covariance"]
        colours, g_colours = inputs["colour"], through["colour"]
        out[:, COLOUR] = g_colours * colours * (1.0 - colours)
        return out


class PaperCoding(Coding):
    """docs/algorithm.md §6: positions, log-variances, ``b'`` and RGB colour, as they are drawn."""

    name = "paper"
    attributes = (Attribute("position", "lsq", BITS["position"], ("dy", "x")),
                  Attribute("variance", "log", BITS["variance"], ("a", "c")),
                  Attribute("covariance", "lsq", BITS["covariance"], ("b",)),
                  Attribute("colour", "lsq", BITS["colour"], ("red", "green", "blue")))


class CorrelationYCoCgCoding(Coding):
    """Our departure (docs/format.md, version 2): the covariance term as the correlation's ``atanh``, drawn
    as ``b^ = tanh(t^) sqrt(a^ c^)`` (a small Gaussian's ``b'`` as finely coded as a large one's, every decoded
    covariance positive definite), and the colour in YCoCg, whose chroma codes cost less."""

    name = "correlation-ycocg"
    attributes = (Attribute("position", "lsq", BITS_V2["position"], ("dy", "x")),
                  Attribute("variance", "log", BITS_V2["variance"], ("a", "c")),
                  Attribute("covariance", "lsq", BITS_V2["covariance"], ("corr",)),
                  Attribute("colour", "lsq", BITS_V2["colour"], ("Y", "Co", "Cg")))

    def coded_values(self, means, cov, colours) -> dict:
        values = super().coded_values(means, cov, colours)
        values["correlation"] = correlation(cov)
        values["covariance"] = np.arctanh(np.clip(values["correlation"], -MAX_CORRELATION, MAX_CORRELATION))[:, None]
        values["colour"] = colours @ RGB_TO_YCOCG.T
        return values

    def drawn(self, values, dtype=np.float32) -> np.ndarray:
        out = super().drawn(values, dtype)
        a, c = values["variance"][:, 0], values["variance"][:, 1]
        out[:, COV_XY] = (np.tanh(values["covariance"][:, 0]) * np.sqrt(a * c))[:, None]
        out[:, COLOUR] = values["colour"] @ YCOCG_TO_RGB.T
        return out

    def value_gradients(self, grad, values) -> dict:
        """The variances get their own gradient plus ``g_b r^ sqrt(c^/a^) / 2`` (and ``a <-> c``), ``t^``
        gets ``g_b sqrt(a^c^) (1 - r^2)`` with ``r^ = tanh(t^)``, and YCoCg, linear, ``g_rgb^ M^-1``."""
        g = super().value_gradients(grad, values)
        a_hat, c_hat = values["variance"][:, 0], values["variance"][:, 1]
        r_hat = np.tanh(values["covariance"][:, 0])
        g_b = g["covariance"][:, 0]
        g["variance"] = g["variance"] + np.stack([g_b * r_hat * np.sqrt(c_hat / a_hat) / 2,
                                                  g_b * r_hat * np.sqrt(a_hat / c_hat) / 2], axis=1)
        g["covariance"] = (g_b * np.sqrt(a_hat * c_hat) * (1.0 - r_hat ** 2))[:, None]
        g["colour"] = g["colour"] @ YCOCG_TO_RGB
        return g

    def parameter_gradients(self, through, inputs) -> np.ndarray:
        """The correlation ``r = b / sqrt(a c)`` (coded as ``t = atanh(r)``) reaches ``b`` as
        ``g_r / sqrt(ac)`` and ``a``, ``c`` as ``-g_r r / (2a)``, ``-g_r r / (2c)`` (zero where ``r`` is
        clipped), and YCoCg reaches RGB as ``g_YCoCg M``."""
        out = np.zeros((through["position"].shape[0], N_PARAMS))
        out[:, MEAN] = through["position"]
        out[:, VARIANCES] = through["variance"]
        r = inputs["correlation"]
        g_r = np.where(np.abs(r) < MAX_CORRELATION, through["covariance"][:, 0] / (1.0 - r ** 2), 0.0)
        a, c = np.abs(inputs["variance"][:, 0]) + LOG_EPS, np.abs(inputs["variance"][:, 1]) + LOG_EPS
        out[:, COV_XY] = (g_r / np.sqrt(a * c))[:, None]
        out[:, VARIANCES] -= np.stack([g_r * r / (2 * a), g_r * r / (2 * c)], axis=1)
        colours, g_colours = inputs["colour"] @ YCOCG_TO_RGB.T, through["colour"] @ RGB_TO_YCOCG
        out[:, COLOUR] = g_colours * colours * (1.0 - colours)
        return out


def correlation(cov: np.ndarray) -> np.ndarray:
    """``b' / sqrt(a'c')`` of filtered covariance triples ``[N, 3]``."""
    a, b, c = np.abs(cov[:, 0]) + LOG_EPS, cov[:, 1], np.abs(cov[:, 2]) + LOG_EPS
    return b / np.sqrt(a * c)


PAPER, CORRELATION_YCOCG = PaperCoding(), CorrelationYCoCgCoding()
