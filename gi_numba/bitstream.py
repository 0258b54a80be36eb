"""The ``.gi`` file: header, quantiser parameters and entropy-coded code streams.

Layout (all integers little-endian; ``docs/format.md`` has the full table)::

    magic "GIPP" | version u8 | height u32 | width u32 | channels u8 | count u32
    bits: position u8, variance u8, covariance u8, colour u8
    16 x float32 quantiser parameters
    stream count u8, then per stream (versions 1 and 2):
        id u8 | model u8 | parameter bytes u16 + bytes | payload bytes u32 + bytes
    or (version 3):
        model u8 | parameters (their own length) | payload bytes varint + bytes
    CRC-32 (u32) of everything before it

Gaussians are stored sorted by quantised ``(y, x)`` (rendering is an
order-free sum), so ``y`` is coded as differences from the previous one.
Version 1 codes the attributes as the paper does, versions 2 and 3 in the
coding of :data:`~gi_numba.quantize.ATTRIBUTES_V2` (correlation, YCoCg).
Each of the eight streams (v1: ``dy, x, a, c, b, r, g, b``) gets the cheapest
of three models, measured on its own symbols: ``fixed`` (raw ``bits``-bit
codes), ``laplace`` (a quantised Laplace with float32 mean and scale, coded
with constriction's ANS coder) and a categorical model, also ANS-coded:
versions 1 and 2 store its exact symbol counts as varints (``histogram``),
version 3 each count's logarithm rounded to a chosen precision
(``log-histogram``, :func:`log_histogram_levels`), a model that costs a
fraction of the bytes and codes the symbols almost as well; version 3 also
frames its streams in fewer bytes. Versions 2 and 3 take the Laplace model
only where it is clearly smaller (:data:`LAPLACE_MARGIN`).
"""

import struct
import zlib
from dataclasses import dataclass

import constriction
import numpy as np

from .errors import GIError
from .limits import check_gaussians, check_pixels
from .quantize import CODINGS, QuantizedGaussians, QuantizerParams, stream_names

MAGIC = b"GIPP"
#: The format versions this module reads and writes; the newest is the default encoder's.
VERSIONS = (1, 2, 3)
VERSION = VERSIONS[-1]
MODELS = ("fixed", "laplace", "histogram", "log-histogram")
#: The models a file of each version may use (indices into :data:`MODELS`; the writer measures them all).
VERSION_MODELS = {1: (0, 1, 2), 2: (0, 1, 2), 3: (0, 1, 3)}
#: By version, how much smaller than the others a Laplace-coded stream must be for the writer to choose it:
#: the Laplace model decodes at about 350 ns a symbol against 80 for a histogram, and versions 2 and 3 take it
#: only where it saves 5% (measured on 24 Kodak files: 0.46% more bytes, parsing 3.5 -> 2.0 ms).
LAPLACE_MARGIN = {1: 0.0, 2: 0.05, 3: 0.05}
#: A log-histogram's precisions: levels per octave of a symbol's count (the writer takes the cheapest).
LEVELS_PER_OCTAVE = (1, 2, 4, 8)
#: ``2^(i/8)`` for ``i = 0..7`` in 8-bit fixed point: the weights of a log-histogram's levels within an octave.
_OCTAVE = np.array([256, 279, 304, 332, 362, 395, 431, 470], np.int64)
#: The highest octave a log-histogram level may reach (weights stay exact integers, their sum within int64).
_MAX_OCTAVE = 32
_HEADER = struct.Struct("<4sBIIBIBBBB")
_QUANTIZERS = struct.Struct("<16f")
_STREAM = struct.Struct("<BBH")
_PAYLOAD = struct.Struct("<I")
_CRC = struct.Struct("<I")
_LAPLACE = struct.Struct("<iiff")
_LAPLACE_SHAPE = struct.Struct("<ff")
_SUPPORT = struct.Struct("<ii")
#: The encoder's floor on a Laplace model's scale (``_laplace_encode``), as stored (float32).
_MIN_SCALE = float(np.float32(0.1))


class CorruptFile(GIError):
    """The bytes are not a valid ``.gi`` file of a version we read."""


#: Bytes of the fixed header (magic to bit depths): all :func:`read_header` needs.
HEADER_BYTES = _HEADER.size


@dataclass
class Header:
    """The fixed header of a ``.gi`` file: version, image size, source channels, Gaussian count, bit depths."""

    version: int
    height: int
    width: int
    channels: int
    count: int
    bits: dict


@dataclass
class StreamInfo:
    """One coded stream: its name, the model that won, and its size in bytes (model + payload)."""

    name: str
    model: str
    nbytes: int


@dataclass
class DecodedFile:
    """A parsed ``.gi`` file."""

    height: int
    width: int
    channels: int
    codes: QuantizedGaussians
    streams: list
    header_bytes: int


# ----------------------------------------------------------------------------- writing

def write(codes, height, width, channels):
    """Serialise quantised Gaussians to ``.gi`` bytes; returns ``(bytes, [StreamInfo])`` (tutorial step 8)."""
    codes = sort_by_position(codes)
    q = codes.quantizers
    bits = q.bits
    head = _HEADER.pack(MAGIC, q.version, height, width, channels, codes.n_gaussians,
                        bits["position"], bits["variance"], bits["covariance"], bits["colour"])
    head += _QUANTIZERS.pack(*_quantizer_floats(q))
    parts, infos = [head, struct.pack("<B", len(stream_names(q.version)))], []
    for index, (name, symbols, nbits) in enumerate(_streams_of(codes)):
        model, params, payload = _best_coding(symbols, nbits, q.version)
        parts.append(_stream_record(q.version, index, model, params, payload))
        infos.append(StreamInfo(name, model, len(parts[-1])))
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body)), infos


def _stream_record(version, index, model, params, payload):
    """The bytes of one stream: its record header, model parameters and payload, in the framing of ``version``."""
    if version < 3:
        return _STREAM.pack(index, MODELS.index(model), len(params)) + params + _PAYLOAD.pack(len(payload)) + payload
    return bytes([MODELS.index(model)]) + params + _varints(np.array([len(payload)])) + payload


def estimated_streams(codes):
    """``[(name, model, bits)]`` of the streams :func:`write` makes of ``codes``: the model it will pick and
    that model's estimated bits (:func:`estimated_bits`) with the stream's record header, in file order."""
    version = codes.quantizers.version
    out = []
    for name, symbols, nbits in _streams_of(sort_by_position(codes)):
        costs = estimated_bits(symbols, nbits, version)
        model = min(costs, key=_ranking(costs, LAPLACE_MARGIN[version]))
        out.append((name, model, costs[model] + _record_bits(version, costs[model])))
    return out


def _record_bits(version, stream_bits):
    """Bits of a stream's record header (the index, model and lengths) around ``stream_bits`` of it."""
    if version < 3:
        return 8 * (_STREAM.size + _PAYLOAD.size)
    return 8 * (1 + _varint_bytes(np.array([int(stream_bits) // 8])))


def estimated_file_bits(streams):
    """Bits of a file whose streams :func:`estimated_streams` estimated: theirs plus the header's and CRC."""
    return 8 * (_HEADER.size + _QUANTIZERS.size + 1 + _CRC.size) + sum(bits for _, _, bits in streams)


def sort_by_position(codes):
    """The same Gaussians in row-major order of their quantised position."""
    order = np.lexsort((codes.position[:, 0], codes.position[:, 1]))
    return QuantizedGaussians(codes.quantizers, codes.position[order], codes.variance[order],
                              codes.covariance[order], codes.colour[order])


#: The quantiser parameters in the order a file stores them (variances: offset before step).
_QUANTIZER_ORDER = ("position_step", "position_offset", "variance_offset", "variance_step", "covariance_step",
                    "covariance_offset", "colour_step", "colour_offset")


def _quantizer_floats(q):
    return [value for name in _QUANTIZER_ORDER for value in getattr(q, name)]


def _streams_of(codes):
    """``(name, int64 symbols, bit depth)`` of each stream; ``dy`` are differences of sorted ``y``."""
    q = codes.quantizers
    y = codes.position[:, 1].astype(np.int64)
    dy = np.diff(y, prepend=0)
    columns = [dy, codes.position[:, 0], codes.variance[:, 0], codes.variance[:, 1], codes.covariance[:, 0],
               codes.colour[:, 0], codes.colour[:, 1], codes.colour[:, 2]]
    return [(name, np.asarray(c, np.int64), d)
            for name, c, d in zip(stream_names(q.version), columns, _stream_depths(q.bits, q.version))]


def _best_coding(symbols, nbits, version):
    """``(model name, parameter bytes, payload bytes)`` of the smallest coding of a file of ``version``, a
    Laplace one only if it is :data:`LAPLACE_MARGIN` smaller than the others (ties: the first of :data:`MODELS`)."""
    options = [("fixed", b"", _pack_bits(symbols, nbits))]
    if symbols.size:
        options.append(("laplace", *_laplace_encode(symbols, version)))
        if version < 3:
            options.append(("histogram", *_histogram_encode(symbols)))
        else:
            options.append(("log-histogram", *_log_histogram_encode(symbols)))
    rank = _ranking({model: len(params) + len(payload) for model, params, payload in options},
                    LAPLACE_MARGIN[version])
    return min(options, key=lambda option: rank(option[0]))


def _ranking(sizes, laplace_margin):
    """The key by which the writer picks a model of ``sizes``: its size, a Laplace model's raised by the margin."""
    return lambda model: sizes[model] / (1.0 - laplace_margin if model == "laplace" else 1.0)


def estimated_bits(symbols, nbits, version=VERSION):
    """Bits each model of ``version`` would spend on a stream (its parameters and payload, as
    :func:`_best_coding` writes them), estimated without coding: the information content of the symbols
    under the model, plus the ANS coder's final word (half a 32-bit word on average).
    """
    options = {"fixed": 8 * -(-symbols.size * nbits // 8)}
    if symbols.size:
        low, high = _support(symbols)
        counts = np.bincount(symbols - low, minlength=high - low + 1)
        information = _laplace_information_bits(symbols, low, high, counts)
        if version < 3:
            options["laplace"] = 8 * _LAPLACE.size + information + 16
            options["histogram"] = (8 * (_SUPPORT.size + _varint_bytes(counts)) + _information_bits(counts) + 16)
        else:
            options["laplace"] = 8 * (_support_bytes(low, high) + _LAPLACE_SHAPE.size) + information + 16
            per_octave = _cheapest_precision(counts)
            options["log-histogram"] = 8 * _log_histogram_parameter_bytes(low, high, counts, per_octave) \
                + _log_histogram_information_bits(counts, per_octave) + 16
    return options


def _laplace_information_bits(symbols, low, high, counts):
    """Bits the symbols cost under the Laplace model :func:`_laplace_encode` fits (``counts``: their histogram)."""
    mean = np.float32(np.median(symbols))
    scale = np.float32(max(np.mean(np.abs(symbols - float(mean))), _MIN_SCALE))
    probabilities = _laplace_probabilities(low, high, float(mean), float(scale))
    used = counts > 0
    return -float(counts[used] @ np.log2(probabilities[used]))


def _laplace_probabilities(low, high, mean, scale):
    """Probabilities of the symbols ``low .. high`` under a Laplace quantised to unit bins, tails on the ends."""
    edges = np.arange(low, high, dtype=np.float64) + 0.5 - mean
    cdf = np.where(edges < 0, 0.5 * np.exp(edges / scale), 1.0 - 0.5 * np.exp(-edges / scale))
    return np.maximum(np.diff(np.concatenate([[0.0], cdf, [1.0]])), 2.0 ** -24)


def _varint_bytes(values):
    """Bytes of ``values`` as LEB128 varints (:func:`_varints`), without writing them."""
    return int(np.sum(1 + (values >= 1 << 7) + (values >= 1 << 14) + (values >= 1 << 21) + (values >= 1 << 28)))


def _pack_bits(symbols, nbits):
    bits = ((symbols[:, None] >> np.arange(nbits - 1, -1, -1)) & 1).astype(np.uint8)
    return np.packbits(bits.ravel()).tobytes()


def _laplace_model(low, high, mean, scale):
    return constriction.stream.model.QuantizedLaplace(int(low), int(high), float(mean), float(scale))


def _support(symbols):
    """Symbol range of a model: constriction needs at least two symbols."""
    low, high = int(symbols.min()), int(symbols.max())
    return low, max(high, low + 1)


def _laplace_encode(symbols, version=1):
    low, high = _support(symbols)
    mean = np.float32(np.median(symbols))
    scale = np.float32(max(np.mean(np.abs(symbols - float(mean))), _MIN_SCALE))
    if version < 3:
        params = _LAPLACE.pack(low, high, mean, scale)
    else:
        params = _varints(np.array([low, high])) + _LAPLACE_SHAPE.pack(mean, scale)
    return params, _ans_encode(symbols, _laplace_model(low, high, mean, scale))


def _histogram_encode(symbols):
    low, high = _support(symbols)
    counts = np.bincount(symbols - low, minlength=high - low + 1)
    params = _SUPPORT.pack(low, high) + _varints(counts)
    return params, _ans_encode(symbols - low, _categorical(counts))


def _categorical(weights):
    return constriction.stream.model.Categorical(weights.astype(np.float64) / weights.sum(), perfect=False)


def log_histogram_levels(counts, per_octave):
    """The level of each count in a log-histogram of ``per_octave`` levels per octave: 0 for an unused
    symbol, else ``round(per_octave * log2(count)) + 1`` (docs/format.md, version 3)."""
    logs = np.log2(np.maximum(counts, 1))
    return np.where(counts > 0, np.rint(per_octave * logs) + 1, 0).astype(np.int64)


def log_histogram_weights(levels, per_octave):
    """The integer weight a decoder gives each level: 0 for level 0, else ``2^((level - 1) / per_octave)``
    in 8-bit fixed point (exact integer arithmetic: encoder and decoder build the same model)."""
    steps = np.maximum(levels - 1, 0)
    weights = _OCTAVE[(steps % per_octave) * (len(_OCTAVE) // per_octave)] << (steps // per_octave)
    return np.where(levels > 0, weights, 0)


def _log_histogram_information_bits(counts, per_octave):
    """Bits that the symbols of histogram ``counts`` cost under their log-histogram of ``per_octave``."""
    weights = log_histogram_weights(log_histogram_levels(counts, per_octave), per_octave).astype(np.float64)
    used = counts > 0
    return -float(counts[used] @ np.log2(weights[used] / weights.sum()))


def _log_histogram_parameter_bytes(low, high, counts, per_octave):
    """Bytes of a log-histogram's parameters: support, precision, level width and the packed levels."""
    width = int(log_histogram_levels(counts, per_octave).max()).bit_length()
    return _support_bytes(low, high) + 2 + -(-counts.size * width // 8)


def _cheapest_precision(counts):
    """The levels per octave (:data:`LEVELS_PER_OCTAVE`) whose log-histogram of ``counts`` costs the fewest
    bits, its parameters and the symbols together."""
    def cost(per_octave):
        width = int(log_histogram_levels(counts, per_octave).max()).bit_length()
        return counts.size * width + _log_histogram_information_bits(counts, per_octave)
    return min(LEVELS_PER_OCTAVE, key=cost)


def _log_histogram_encode(symbols):
    low, high = _support(symbols)
    counts = np.bincount(symbols - low, minlength=high - low + 1)
    per_octave = _cheapest_precision(counts)
    levels = log_histogram_levels(counts, per_octave)
    width = int(levels.max()).bit_length()
    params = _varints(np.array([low, high])) + bytes([per_octave, width]) + _pack_bits(levels, width)
    return params, _ans_encode(symbols - low, _categorical(log_histogram_weights(levels, per_octave)))


def _support_bytes(low, high):
    """Bytes of a version-3 model's support ``low, high`` (two varints)."""
    return _varint_bytes(np.array([low, high]))


def _ans_encode(symbols, model):
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), model)
    return coder.get_compressed().astype("<u4").tobytes()


def _varints(values):
    out = bytearray()
    for v in values.tolist():
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


# ----------------------------------------------------------------------------- reading

def read(data, max_pixels=None):
    """Parse and decode ``.gi`` bytes; raises :class:`CorruptFile` for anything invalid.

    Every size the file declares is checked against :mod:`gi_numba.limits`
    (``max_pixels``) and every stream against its code alphabet *before*
    anything is allocated for it or handed to the entropy coder; a file over
    a limit raises :class:`~gi_numba.errors.GIError` saying which.
    """
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise CorruptFile("not a .gi file (wrong magic number)")
    if len(data) < _HEADER.size + _QUANTIZERS.size + 1 + _CRC.size:
        raise CorruptFile("file is truncated")
    _check_version(data[4])
    body, (crc,) = data[:-_CRC.size], _CRC.unpack(data[-_CRC.size:])
    if zlib.crc32(body) != crc:
        raise CorruptFile("file is damaged (checksum mismatch)")
    try:
        return _parse(body, max_pixels)
    except GIError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # struct/numpy errors, or a constriction error
        raise CorruptFile(f"file is damaged ({type(exc).__name__})") from None


def read_header(data, max_pixels=None):
    """The :class:`Header` at the start of ``.gi`` bytes (:data:`HEADER_BYTES` suffice), checked against the limits.

    This reads no stream and checks no CRC: it is what a viewer needs to
    show a file's size before decoding it (the Pillow plugin's ``open``).
    """
    data = bytes(data[:HEADER_BYTES])
    if data[:4] != MAGIC:
        raise CorruptFile("not a .gi file (wrong magic number)")
    if len(data) > 4:
        _check_version(data[4])
    if len(data) < HEADER_BYTES:
        raise CorruptFile("file is truncated")
    _, version, height, width, channels, count, *bits = _HEADER.unpack(data)
    bits = dict(zip((a.name for a in CODINGS[version]), bits))
    if not (height >= 1 and width >= 1 and channels in (1, 3) and all(1 <= b <= 16 for b in bits.values())):
        raise CorruptFile("file is damaged (impossible header values)")
    check_pixels(height, width, max_pixels, what="the file's image")
    check_gaussians(count, height, width, max_pixels)
    return Header(version, height, width, channels, count, bits)


def _check_version(version):
    if version not in VERSIONS:
        raise CorruptFile(f".gi format version {version} is not supported (this gi-numba reads versions "
                          f"{', '.join(map(str, VERSIONS))})")


def _parse(body, max_pixels):
    header = read_header(body, max_pixels)
    height, width, channels, count, bits = header.height, header.width, header.channels, header.count, header.bits
    stream_bytes = len(body) - _HEADER.size - _QUANTIZERS.size - 1
    if count > 8 * stream_bytes:
        raise CorruptFile(f"file is damaged (it declares {count} Gaussians but its streams hold only "
                          f"{stream_bytes} bytes, under one bit per Gaussian)")
    floats = np.array(_QUANTIZERS.unpack_from(body, _HEADER.size), np.float32).astype(np.float64)
    if not np.isfinite(floats).all():
        raise CorruptFile("file is damaged (quantiser parameters are not finite)")
    split = np.split(floats, np.cumsum([2, 2, 2, 2, 1, 1, 3]))
    quantizers = QuantizerParams(bits, **dict(zip(_QUANTIZER_ORDER, split)), version=header.version)
    streams = stream_names(header.version)
    pos = _HEADER.size + _QUANTIZERS.size
    (n_streams,) = struct.unpack_from("<B", body, pos)
    pos += 1
    if n_streams != len(streams):
        raise CorruptFile("file is damaged (wrong number of streams)")
    columns, infos = [], []
    for index, nbits in enumerate(_stream_depths(bits, header.version)):
        start = pos
        model, fields, payload, pos = _read_record(body, pos, index, header.version, nbits)
        columns.append(_decode_stream(model, fields, payload, count, nbits))
        infos.append(StreamInfo(streams[index], model, pos - start))
    if pos != len(body):
        raise CorruptFile("file is damaged (unexpected trailing bytes)")
    codes = _codes_from_columns(columns, bits, quantizers)
    return DecodedFile(height, width, channels, codes, infos, _HEADER.size + _QUANTIZERS.size + 1 + _CRC.size)


def _stream_depths(bits, version):
    """Bit depth of each stream of a file of ``version``, in file order."""
    return [bits[a.name] for a in CODINGS[version] for _ in a.streams]


def _read_record(body, pos, index, version, nbits):
    """``(model, its parameter fields, payload, position after)`` of stream ``index``'s record at ``pos``.

    Versions 1 and 2 frame a record with its index and the lengths of its
    parameters and payload; version 3 with its model alone, each model's
    parameters saying their own length (:func:`_read_fields`).
    """
    if version >= 3:
        model = _read_model(body, pos, version)
        fields, pos = _read_fields(body, pos + 1, model, nbits)
        payload_len, pos = _read_varint(body, pos)
    else:
        stream_id, model_id, param_len = _STREAM.unpack_from(body, pos)
        if stream_id != index:
            raise CorruptFile("file is damaged (bad stream table)")
        model = _read_model(body, pos + 1, version)
        pos += _STREAM.size
        params = body[pos:pos + param_len]
        if len(params) != param_len:
            raise CorruptFile("file is truncated")
        fields = _fields_of(model, params)
        (payload_len,) = _PAYLOAD.unpack_from(body, pos + param_len)
        pos += param_len + _PAYLOAD.size
    payload = body[pos:pos + payload_len]
    if len(payload) != payload_len:
        raise CorruptFile("file is truncated")
    return model, fields, payload, pos + payload_len


def _read_model(body, pos, version):
    """The model named by the byte at ``pos``, if a file of ``version`` may use it."""
    if pos >= len(body) or body[pos] not in VERSION_MODELS[version]:
        raise CorruptFile("file is damaged (bad stream table)")
    return MODELS[body[pos]]


def _fields_of(model, params):
    """A version-1/2 model's parameter fields from its ``params`` bytes: ``()`` (fixed),
    ``(low, high, mean, scale)`` (laplace) or ``(low, high, count varint bytes)`` (histogram)."""
    if model == "fixed":
        return ()
    if model == "laplace":
        if len(params) != _LAPLACE.size:
            raise CorruptFile("file is damaged (bad entropy model)")
        return _LAPLACE.unpack(params)
    if len(params) < _SUPPORT.size:
        raise CorruptFile("file is damaged (bad entropy model)")
    return (*_SUPPORT.unpack_from(params), params[_SUPPORT.size:])


def _read_fields(body, pos, model, nbits):
    """A version-3 model's parameter fields at ``pos`` and the position after them: ``()`` (fixed),
    ``(low, high, mean, scale)`` (laplace) or ``(low, high, levels per octave, levels)`` (log-histogram).

    The support is checked against the alphabet before the levels it counts are read.
    """
    if model == "fixed":
        return (), pos
    low, pos = _read_varint(body, pos)
    high, pos = _read_varint(body, pos)
    _check_support(low, high, nbits)
    if model == "laplace":
        if pos + _LAPLACE_SHAPE.size > len(body):
            raise CorruptFile("file is truncated")
        return (low, high, *_LAPLACE_SHAPE.unpack_from(body, pos)), pos + _LAPLACE_SHAPE.size
    if pos + 2 > len(body):
        raise CorruptFile("file is truncated")
    per_octave, width = body[pos], body[pos + 1]
    if per_octave not in LEVELS_PER_OCTAVE or not 1 <= width <= 8:
        raise CorruptFile("file is damaged (bad entropy model)")
    symbols = high - low + 1
    size = -(-symbols * width // 8)
    packed = body[pos + 2:pos + 2 + size]
    if len(packed) != size:
        raise CorruptFile("file is truncated")
    return (low, high, per_octave, _unpack_bits(packed, symbols, width)), pos + 2 + size


def _read_varint(body, pos):
    """``(value, position after)`` of the LEB128 varint (at most 5 bytes) at ``pos``."""
    value = 0
    for shift in range(0, 35, 7):
        if pos >= len(body):
            raise CorruptFile("file is truncated")
        byte = body[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise CorruptFile("file is damaged (varint longer than 5 bytes)")


def _decode_stream(model, fields, payload, count, nbits):
    """The ``count`` symbols of one stream, after checking its model and payload size against the alphabet.

    A stream's symbols are codes in ``0 .. 2^nbits - 1`` (``dy`` too, as the
    Gaussians are sorted by ``y``); a model's support may reach one past the
    last code (:func:`_support`). Nothing reaches constriction unless it is
    valid for it, and an ANS stream must be used up exactly by its symbols.
    """
    if model == "fixed":
        if len(payload) != -(-count * nbits // 8):
            raise CorruptFile("file is damaged (fixed-length stream of the wrong size)")
        return _unpack_bits(payload, count, nbits)
    if len(payload) % 4:
        raise CorruptFile("file is damaged (entropy-coded stream of the wrong size)")
    if count == 0:
        if payload:
            raise CorruptFile("file is damaged (entropy-coded stream of the wrong size)")
        return np.zeros(0, np.int64)
    low, high = fields[:2]
    _check_support(low, high, nbits)
    if model == "laplace":
        mean, scale = fields[2:]
        if not (np.isfinite(mean) and low - 1 <= mean <= high + 1 and np.isfinite(scale)
                and _MIN_SCALE <= scale <= 2 ** 17):
            raise CorruptFile("file is damaged (bad entropy model)")
        return _ans_decode(payload, _laplace_model(low, high, mean, scale), count)
    if model == "histogram":
        counts = _read_varints(fields[2], high - low + 1, count)
        if counts.sum() != count:
            raise CorruptFile("file is damaged (histogram does not count the declared Gaussians)")
        return _ans_decode(payload, _categorical(counts), count) + low
    per_octave, levels = fields[2:]
    if levels.max() == 0 or (levels.max() - 1) // per_octave > _MAX_OCTAVE:
        raise CorruptFile("file is damaged (bad entropy model)")
    return _ans_decode(payload, _categorical(log_histogram_weights(levels, per_octave)), count) + low


def _unpack_bits(payload, count, nbits):
    """The ``count`` ``nbits``-bit codes (at most 16 bits) packed MSB first by :func:`_pack_bits`.

    Code ``i`` starts at bit ``i * nbits``: it lies within the 24 bits of the
    three bytes from ``i * nbits // 8``, shifted by what is left of them.
    """
    data = np.frombuffer(payload + b"\0\0", np.uint8).astype(np.uint32)
    offsets = np.arange(count, dtype=np.int64) * nbits
    first, skip = offsets >> 3, offsets & 7
    window = (data[first] << 16) | (data[first + 1] << 8) | data[first + 2]
    return ((window >> (24 - nbits - skip)) & ((1 << nbits) - 1)).astype(np.int64)


def _check_support(low, high, nbits):
    if not 0 <= low < high <= 2 ** nbits:
        raise CorruptFile("file is damaged (entropy model outside the code alphabet)")


def _information_bits(counts):
    """Bits that ``counts`` symbols cost at least under the histogram they define (its entropy)."""
    used = counts[counts > 0].astype(np.float64)
    return float(-(used * np.log2(used / used.sum())).sum())


def _ans_decode(payload, model, count):
    words = np.frombuffer(payload, "<u4").astype(np.uint32)
    if words.size and words[-1] == 0:
        raise CorruptFile("file is damaged (entropy-coded stream ends in a zero word)")
    coder = constriction.stream.stack.AnsCoder(words)
    symbols = coder.decode(model, count).astype(np.int64)
    if not coder.is_empty():
        raise CorruptFile("file is damaged (entropy-coded stream longer than its symbols)")
    return symbols


def _read_varints(data, n, largest):
    """``n`` LEB128 varints from ``data``, each at most ``largest``.

    A varint is a run of bytes with the high bit set closed by one without
    it, low 7 bits first; one of more than 5 bytes, or bytes left after the
    last, make the model invalid. Decoded with array operations, all at once.
    """
    if n < 1 or n > (1 << 16) + 1 or len(data) > 5 * n:
        raise CorruptFile("file is damaged (bad entropy model)")
    raw = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(raw < 0x80)
    if ends.size != n or ends[-1] != raw.size - 1:
        raise CorruptFile("file is damaged (bad entropy model)")
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > 5:
        raise CorruptFile("file is damaged (bad entropy model)")
    shifts = 7 * (np.arange(raw.size) - np.repeat(starts, lengths))
    values = np.add.reduceat((raw & 0x7F).astype(np.int64) << shifts, starts)
    if values.max() > largest:
        raise CorruptFile("file is damaged (bad entropy model)")
    return values


def _codes_from_columns(columns, bits, quantizers):
    dy, x, a, c, b, red, green, blue = columns
    y = np.cumsum(dy)
    limits = [(y, "position"), (x, "position"), (a, "variance"), (c, "variance"), (b, "covariance"),
              (red, "colour"), (green, "colour"), (blue, "colour")]
    for values, kind in limits:
        if values.size and (values.min() < 0 or values.max() > 2 ** bits[kind] - 1):
            raise CorruptFile("file is damaged (code out of range)")
    return QuantizedGaussians(quantizers, _stacked(x, y), _stacked(a, c), _stacked(b), _stacked(red, green, blue))


def _stacked(*columns):
    return np.stack(columns, axis=1).astype(np.uint16)
