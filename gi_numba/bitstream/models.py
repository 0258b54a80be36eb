"""Entropy models: how one stream's symbols become bytes (docs/format.md, "Entropy models").

Each model is a class with an id (the byte a stream record names it by)
that can say, for the symbols of a :class:`Stream`:

- :meth:`~EntropyModel.estimated_bits`: what its parameters and payload
  will take, without coding (the estimate that QAT's rate term, RDOQ and
  the writer's :func:`~gi_numba.bitstream.container.estimated_streams` read);
- :meth:`~EntropyModel.encode`: its parameter bytes and payload;
- :meth:`~EntropyModel.read_parameters` and :meth:`~EntropyModel.decode`:
  the way back, every parameter checked against the stream's alphabet
  before anything is allocated for it or handed to the entropy coder.

A stream's symbols are codes in ``0 .. 2^nbits - 1``; a model's support
``low .. high`` may reach one past the last code (constriction needs at least
two symbols). How a model's support is written is the framing's
(:mod:`~gi_numba.bitstream.framing`), the rest is the model's own. The
models other than :class:`Fixed` are coded with constriction's ANS coder,
whose final word costs half a 32-bit word on average (:data:`ANS_FINAL_BITS`).

Adding a model is one subclass here and one entry in :data:`MODELS`; a
format allows it in :mod:`~gi_numba.bitstream.formats`.
"""

import struct

import constriction
import numpy as np

from ..errors import CorruptFile
from .varint import pack_bits, packed_bytes, read_varints, unpack_bits, varint_bytes, varints

#: The ANS coder's final word, on average (bits).
ANS_FINAL_BITS = 16
#: A Laplace model's mean and scale.
_SHAPE = struct.Struct("<ff")


class Stream:
    """The int64 ``symbols`` of one stream of ``nbits``-bit codes, with their support and histogram."""

    def __init__(self, symbols: np.ndarray, nbits: int):
        self.symbols, self.nbits = symbols, nbits
        self.fits = {}  # each model's fit to these symbols, by model id (AnsModel.fitted)
        if symbols.size:
            self.low, self.high = support(symbols)
            self.counts = np.bincount(symbols - self.low, minlength=self.high - self.low + 1)


def support(symbols: np.ndarray) -> tuple:
    """``(low, high)``: the symbols' range, at least two symbols wide."""
    low, high = int(symbols.min()), int(symbols.max())
    return low, max(high, low + 1)


def check_support(low: int, high: int, nbits: int) -> None:
    """Refuse a support outside the alphabet of ``nbits``-bit codes (one past the last code allowed)."""
    if not 0 <= low < high <= 2 ** nbits:
        raise CorruptFile("file is damaged (entropy model outside the code alphabet)")


class EntropyModel:
    """The interface of an entropy model; :data:`MODELS` holds one instance of each, by id."""

    id: int
    name: str

    def estimated_bits(self, stream: Stream, framing) -> float:
        """Bits of this model's parameters and payload for ``stream`` in ``framing``, estimated without coding."""
        raise NotImplementedError

    def encode(self, stream: Stream, framing) -> tuple:
        """``(parameter bytes, payload bytes)`` of ``stream`` in ``framing``."""
        raise NotImplementedError

    def read_parameters(self, data: bytes, pos: int, nbits: int, framing) -> tuple:
        """``(parameters, position after)`` of this model's parameters at ``pos`` of ``data``."""
        raise NotImplementedError

    def decode(self, parameters, payload: bytes, count: int, nbits: int) -> np.ndarray:
        """The ``count`` int64 symbols of ``payload``, after checking ``parameters`` and the payload's size."""
        raise NotImplementedError


class Fixed(EntropyModel):
    """Every symbol as its raw ``nbits``-bit code (:func:`~.varint.pack_bits`); no parameters."""

    id, name = 0, "fixed"

    def estimated_bits(self, stream, framing) -> float:
        return 8 * packed_bytes(stream.symbols.size, stream.nbits)

    def encode(self, stream, framing) -> tuple:
        return b"", pack_bits(stream.symbols, stream.nbits)

    def read_parameters(self, data, pos, nbits, framing) -> tuple:
        return (), pos

    def decode(self, parameters, payload, count, nbits) -> np.ndarray:
        if len(payload) != packed_bytes(count, nbits):
            raise CorruptFile("file is damaged (fixed-length stream of the wrong size)")
        return unpack_bits(payload, count, nbits)


class AnsModel(EntropyModel):
    """A model whose symbols are ANS-coded: parameters ``support + own fields``, payload 32-bit words."""

    def estimated_bits(self, stream, framing) -> float:
        return 8 * self.parameter_bytes(stream, framing) + self.information_bits(stream) + ANS_FINAL_BITS

    def fit(self, stream) -> object:
        """The model's own fields fitted to ``stream`` besides the support (none by default)."""
        return None

    def fitted(self, stream) -> object:
        """:meth:`fit` of ``stream``, computed once per stream (estimates and the writer read it)."""
        if self.id not in stream.fits:
            stream.fits[self.id] = self.fit(stream)
        return stream.fits[self.id]

    def parameter_bytes(self, stream, framing) -> int:
        """Bytes of the parameters this model writes for ``stream``."""
        raise NotImplementedError

    def information_bits(self, stream) -> float:
        """Bits the symbols cost under the model fitted to them (their information content)."""
        raise NotImplementedError

    def decode(self, parameters, payload, count, nbits) -> np.ndarray:
        if len(payload) % 4:
            raise CorruptFile("file is damaged (entropy-coded stream of the wrong size)")
        if count == 0:
            if payload:
                raise CorruptFile("file is damaged (entropy-coded stream of the wrong size)")
            return np.zeros(0, np.int64)
        low, high = parameters[:2]
        check_support(low, high, nbits)
        return ans_decode(payload, self.coder_model(parameters, count), count) + self.symbol_offset(parameters)

    def coder_model(self, parameters, count) -> object:
        """The constriction model of checked ``parameters`` (raises :class:`CorruptFile` for invalid ones)."""
        raise NotImplementedError

    def symbol_offset(self, parameters) -> int:
        """What the coder's symbols are offset by."""
        return 0


class Laplace(AnsModel):
    """A quantised Laplace fitted to the symbols: float32 mean (their median) and scale (mean absolute
    deviation, at least :data:`MIN_SCALE`), unit bins over the support, the tails on its ends."""

    id, name = 1, "laplace"
    #: The encoder's floor on the scale, as stored (float32).
    MIN_SCALE = float(np.float32(0.1))
    #: The largest scale a file may declare.
    MAX_SCALE = 2.0 ** 17

    def fit(self, stream) -> tuple:
        """``(mean, scale)`` (float32) of the Laplace fitted to ``stream``."""
        mean = np.float32(np.median(stream.symbols))
        scale = np.float32(max(np.mean(np.abs(stream.symbols - float(mean))), self.MIN_SCALE))
        return mean, scale

    def parameter_bytes(self, stream, framing) -> int:
        return framing.support_bytes(stream.low, stream.high) + _SHAPE.size

    def information_bits(self, stream) -> float:
        mean, scale = self.fitted(stream)
        probabilities = laplace_probabilities(stream.low, stream.high, float(mean), float(scale))
        used = stream.counts > 0
        return -float(stream.counts[used] @ np.log2(probabilities[used]))

    def encode(self, stream, framing) -> tuple:
        mean, scale = self.fitted(stream)
        parameters = framing.pack_support(stream.low, stream.high) + _SHAPE.pack(mean, scale)
        model = constriction.stream.model.QuantizedLaplace(stream.low, stream.high, float(mean), float(scale))
        return parameters, ans_encode(stream.symbols, model)

    def read_parameters(self, data, pos, nbits, framing) -> tuple:
        (low, high), pos = framing.read_support(data, pos, nbits)
        if pos + _SHAPE.size > len(data):
            raise framing.short_parameters()
        return (low, high, *_SHAPE.unpack_from(data, pos)), pos + _SHAPE.size

    def coder_model(self, parameters, count) -> object:
        low, high, mean, scale = parameters
        if not (np.isfinite(mean) and low - 1 <= mean <= high + 1 and np.isfinite(scale)
                and self.MIN_SCALE <= scale <= self.MAX_SCALE):
            raise CorruptFile("file is damaged (bad entropy model)")
        return constriction.stream.model.QuantizedLaplace(int(low), int(high), float(mean), float(scale))


def laplace_probabilities(low: int, high: int, mean: float, scale: float) -> np.ndarray:
    """Probabilities ``[high - low + 1]`` of the symbols ``low .. high`` under a Laplace quantised to unit
    bins, the tails on the ends (each at least ``2^-24``, as the coder's)."""
    edges = np.arange(low, high, dtype=np.float64) + 0.5 - mean
    cdf = np.where(edges < 0, 0.5 * np.exp(edges / scale), 1.0 - 0.5 * np.exp(-edges / scale))
    return np.maximum(np.diff(np.concatenate([[0.0], cdf, [1.0]])), 2.0 ** -24)


class CategoricalModel(AnsModel):
    """An ANS model of one weight per symbol of the support; it codes ``symbol - low``."""

    def symbol_offset(self, parameters) -> int:
        return parameters[0]


class Histogram(CategoricalModel):
    """The symbols' exact counts over the support, as varints: a categorical model (versions 1, 2)."""

    id, name = 2, "histogram"

    def parameter_bytes(self, stream, framing) -> int:
        return framing.support_bytes(stream.low, stream.high) + varint_bytes(stream.counts)

    def information_bits(self, stream) -> float:
        return information_bits(stream.counts)

    def encode(self, stream, framing) -> tuple:
        parameters = framing.pack_support(stream.low, stream.high) + varints(stream.counts)
        return parameters, ans_encode(stream.symbols - stream.low, categorical(stream.counts))

    def read_parameters(self, data, pos, nbits, framing) -> tuple:
        """The counts run to the end of ``data`` (a framing that gives the parameters their length)."""
        (low, high), pos = framing.read_support(data, pos, nbits)
        return (low, high, data[pos:]), len(data)

    def coder_model(self, parameters, count) -> object:
        low, high, counts = parameters
        counts = read_varints(counts, high - low + 1, count)
        if counts.sum() != count:
            raise CorruptFile("file is damaged (histogram does not count the declared Gaussians)")
        return categorical(counts)


def information_bits(counts: np.ndarray) -> float:
    """Bits that ``counts`` symbols cost at least under the histogram they define (its entropy)."""
    used = counts[counts > 0].astype(np.float64)
    return float(-(used * np.log2(used / used.sum())).sum())


class LogHistogram(CategoricalModel):
    """Each count's logarithm rounded to ``per_octave`` levels per octave (version 3): a categorical model
    that costs a fraction of a histogram's bytes and codes the symbols almost as well.

    Parameters: the support, ``per_octave`` (u8, one of :data:`LEVELS_PER_OCTAVE`), the levels' bit
    width (u8, 1-8) and the levels (:func:`log_histogram_levels`) as bit fields of that width.
    """

    id, name = 3, "log-histogram"
    #: The precisions a file may use; the writer takes the cheapest (:meth:`cheapest_precision`).
    LEVELS_PER_OCTAVE = (1, 2, 4, 8)
    #: ``2^(i/8)`` for ``i = 0..7`` in 8-bit fixed point: the weights of the levels within an octave.
    OCTAVE = np.array([256, 279, 304, 332, 362, 395, 431, 470], np.int64)
    #: The highest octave a level may reach (weights stay exact integers, their sum within int64).
    MAX_OCTAVE = 32

    def cheapest_precision(self, counts) -> int:
        """The levels per octave whose log-histogram of ``counts`` costs the fewest bits, levels and symbols."""
        def cost(per_octave):
            width = int(log_histogram_levels(counts, per_octave).max()).bit_length()
            return counts.size * width + self.precision_information_bits(counts, per_octave)
        return min(self.LEVELS_PER_OCTAVE, key=cost)

    def precision_information_bits(self, counts, per_octave) -> float:
        """Bits that the symbols of histogram ``counts`` cost under their log-histogram of ``per_octave``."""
        weights = self.weights(log_histogram_levels(counts, per_octave), per_octave).astype(np.float64)
        used = counts > 0
        return -float(counts[used] @ np.log2(weights[used] / weights.sum()))

    def weights(self, levels, per_octave) -> np.ndarray:
        """The integer weight a decoder gives each level: 0 for level 0, else ``2^((level - 1) / per_octave)``
        in 8-bit fixed point (exact integer arithmetic: encoder and decoder build the same model)."""
        steps = np.maximum(levels - 1, 0)
        weights = self.OCTAVE[(steps % per_octave) * (len(self.OCTAVE) // per_octave)] << (steps // per_octave)
        return np.where(levels > 0, weights, 0)

    def fit(self, stream) -> int:
        """The cheapest levels per octave of the stream's histogram."""
        return self.cheapest_precision(stream.counts)

    def parameter_bytes(self, stream, framing) -> int:
        per_octave = self.fitted(stream)
        width = int(log_histogram_levels(stream.counts, per_octave).max()).bit_length()
        return framing.support_bytes(stream.low, stream.high) + 2 + packed_bytes(stream.counts.size, width)

    def information_bits(self, stream) -> float:
        return self.precision_information_bits(stream.counts, self.fitted(stream))

    def encode(self, stream, framing) -> tuple:
        per_octave = self.fitted(stream)
        levels = log_histogram_levels(stream.counts, per_octave)
        width = int(levels.max()).bit_length()
        parameters = (framing.pack_support(stream.low, stream.high) + bytes([per_octave, width])
                      + pack_bits(levels, width))
        return parameters, ans_encode(stream.symbols - stream.low, categorical(self.weights(levels, per_octave)))

    def read_parameters(self, data, pos, nbits, framing) -> tuple:
        (low, high), pos = framing.read_support(data, pos, nbits)
        if pos + 2 > len(data):
            raise framing.short_parameters()
        per_octave, width = data[pos], data[pos + 1]
        if per_octave not in self.LEVELS_PER_OCTAVE or not 1 <= width <= 8:
            raise CorruptFile("file is damaged (bad entropy model)")
        symbols = high - low + 1
        size = packed_bytes(symbols, width)
        packed = data[pos + 2:pos + 2 + size]
        if len(packed) != size:
            raise framing.short_parameters()
        return (low, high, per_octave, unpack_bits(packed, symbols, width)), pos + 2 + size

    def coder_model(self, parameters, count) -> object:
        _, _, per_octave, levels = parameters
        if levels.max() == 0 or (levels.max() - 1) // per_octave > self.MAX_OCTAVE:
            raise CorruptFile("file is damaged (bad entropy model)")
        return categorical(self.weights(levels, per_octave))


def log_histogram_levels(counts: np.ndarray, per_octave: int) -> np.ndarray:
    """The level of each count in a log-histogram of ``per_octave`` levels per octave: 0 for an unused
    symbol, else ``round(per_octave * log2(count)) + 1`` (docs/format.md, version 3)."""
    logs = np.log2(np.maximum(counts, 1))
    return np.where(counts > 0, np.rint(per_octave * logs) + 1, 0).astype(np.int64)


def categorical(weights: np.ndarray) -> "constriction.stream.model.Categorical":
    """constriction's categorical model of integer ``weights`` (their normalised probabilities)."""
    return constriction.stream.model.Categorical(weights.astype(np.float64) / weights.sum(), perfect=False)


def ans_encode(symbols: np.ndarray, model) -> bytes:
    """``symbols`` ANS-coded under ``model``, as little-endian 32-bit words."""
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), model)
    return coder.get_compressed().astype("<u4").tobytes()


def ans_decode(payload: bytes, model, count: int) -> np.ndarray:
    """The ``count`` symbols of an ANS ``payload``, which they must use up exactly."""
    words = np.frombuffer(payload, "<u4").astype(np.uint32)
    if words.size and words[-1] == 0:
        raise CorruptFile("file is damaged (entropy-coded stream ends in a zero word)")
    coder = constriction.stream.stack.AnsCoder(words)
    symbols = coder.decode(model, count).astype(np.int64)
    if not coder.is_empty():
        raise CorruptFile("file is damaged (entropy-coded stream longer than its symbols)")
    return symbols


FIXED, LAPLACE, HISTOGRAM, LOG_HISTOGRAM = Fixed(), Laplace(), Histogram(), LogHistogram()
#: Every model, by id.
MODELS = {model.id: model for model in (FIXED, LAPLACE, HISTOGRAM, LOG_HISTOGRAM)}
