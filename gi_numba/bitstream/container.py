"""The ``.gi`` container: header, quantiser parameters, stream records and CRC (docs/format.md).

Layout (integers little-endian)::

    header (HEADER_FIELDS) | quantiser parameters (QUANTIZER_FIELDS, float32)
    | stream count u8 | one record per stream (the version's framing) | CRC-32 u32

Gaussians are stored sorted by quantised ``(y, x)`` (rendering is an
order-free sum), so ``y`` is coded as differences ``dy`` from the previous
one. Each stream gets the cheapest of the models its version allows,
measured on its own symbols (a Laplace model only where it is clearly
smaller: :class:`~.formats.Format`).
"""

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..codes import QuantizedGaussians, QuantizerParams
from ..errors import CorruptFile, GIError
from ..limits import check_gaussians, check_pixels
from .formats import format_of
from .models import Stream

MAGIC = b"GIPP"
#: The fixed header, field by field: what the writer packs and the reader unpacks, in order.
HEADER_FIELDS = (("magic", "4s"), ("version", "B"), ("height", "I"), ("width", "I"), ("channels", "B"),
                 ("count", "I"), ("position_bits", "B"), ("variance_bits", "B"), ("covariance_bits", "B"),
                 ("colour_bits", "B"))
#: The quantiser parameters, field by field (name of the :class:`~gi_numba.codes.QuantizerParams` array, its
#: float32 count), in the order a file stores them (variances: offset before step).
QUANTIZER_FIELDS = (("position_step", 2), ("position_offset", 2), ("variance_offset", 2), ("variance_step", 2),
                    ("covariance_step", 1), ("covariance_offset", 1), ("colour_step", 3), ("colour_offset", 3))
_HEADER = struct.Struct("<" + "".join(code for _, code in HEADER_FIELDS))
_QUANTIZERS = struct.Struct(f"<{sum(n for _, n in QUANTIZER_FIELDS)}f")
_COUNT = struct.Struct("<B")
_CRC = struct.Struct("<I")
#: Bytes of the fixed header (magic to bit depths): all :func:`read_header` needs.
HEADER_BYTES = _HEADER.size
#: Bytes of a file around its stream records: header, quantiser parameters, stream count and CRC.
OVERHEAD_BYTES = _HEADER.size + _QUANTIZERS.size + _COUNT.size + _CRC.size
#: How far outside the image a decoded mean may lie, in image sizes (the larger of height and width).
POSITION_MARGIN = 1.0
#: The range of a decoded log-variance ``ln v``: from the log quantiser's floor ``ln(1e-6)`` (rounded down)
#: to a standard deviation of :data:`MAX_DEVIATION` image sizes.
MIN_LOG_VARIANCE = -14.0
MAX_DEVIATION = 64.0
#: The range of a decoded colour value (RGB, or Y, Co, Cg), around the ``[0, 1]`` of a sigmoid colour.
COLOUR_RANGE = (-2.0, 3.0)


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
    """One coded stream: its name, the model that won, and its size in bytes (record framing included)."""

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

def write(codes: QuantizedGaussians, height: int, width: int, channels: int) -> tuple:
    """Serialise quantised Gaussians to ``.gi`` bytes; returns ``(bytes, [StreamInfo])`` (tutorial step 8)."""
    codes = codes.sorted_by_position()
    q = codes.quantizers
    fmt = format_of(q.version)
    fields = dict(magic=MAGIC, version=fmt.version, height=height, width=width, channels=channels,
                  count=codes.n_gaussians, **{f"{role}_bits": depth for role, depth in q.bits.items()})
    head = _HEADER.pack(*(fields[name] for name, _ in HEADER_FIELDS))
    head += _QUANTIZERS.pack(*(value for name, _ in QUANTIZER_FIELDS for value in getattr(q, name)))
    parts, infos = [head, _COUNT.pack(len(fmt.coding.stream_names))], []
    for index, (name, stream) in enumerate(streams_of(codes)):
        model, parameters, payload = cheapest_coding(stream, fmt)
        parts.append(fmt.framing.record(index, model, parameters, payload))
        infos.append(StreamInfo(name, model.name, len(parts[-1])))
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body)), infos


def streams_of(codes: QuantizedGaussians) -> list:
    """``(name, Stream)`` of each stream of ``codes`` (sorted by position), in file order; ``dy`` are
    differences of the sorted ``y``."""
    q = codes.quantizers
    coding = format_of(q.version).coding
    dy = np.diff(codes.position[:, 1].astype(np.int64), prepend=0)
    columns = [dy, codes.position[:, 0], codes.variance[:, 0], codes.variance[:, 1], codes.covariance[:, 0],
               codes.colour[:, 0], codes.colour[:, 1], codes.colour[:, 2]]
    return [(name, Stream(np.asarray(column, np.int64), depth))
            for name, column, depth in zip(coding.stream_names, columns, coding.stream_depths(q.bits))]


def cheapest_coding(stream: Stream, fmt) -> tuple:
    """``(model, parameter bytes, payload bytes)`` of the smallest coding of ``stream`` that ``fmt`` allows,
    by the real bytes (ranked by :meth:`~.formats.Format.ranking`; ties: the first model)."""
    options = [(model, *model.encode(stream, fmt.framing)) for model in _candidates(stream, fmt)]
    rank = fmt.ranking({model: len(parameters) + len(payload) for model, parameters, payload in options})
    return min(options, key=lambda option: rank(option[0]))


def _candidates(stream, fmt):
    """The models of ``fmt`` that can code ``stream``: all of them, or only the fixed one if it is empty."""
    return fmt.models if stream.symbols.size else fmt.models[:1]


def estimated_streams(codes: QuantizedGaussians) -> list:
    """``[(name, model name, bits)]`` of the streams :func:`write` makes of ``codes``: the model that the
    models' own estimates (:meth:`~.models.EntropyModel.estimated_bits`) pick and its estimated bits with
    the stream's record framing, in file order."""
    fmt = format_of(codes.quantizers.version)
    out = []
    for name, stream in streams_of(codes.sorted_by_position()):
        costs = {model: model.estimated_bits(stream, fmt.framing) for model in _candidates(stream, fmt)}
        model = min(costs, key=fmt.ranking(costs))
        out.append((name, model.name, costs[model] + fmt.framing.record_bits(costs[model])))
    return out


def estimated_file_bits(streams: list) -> float:
    """Bits of a file whose streams :func:`estimated_streams` estimated: theirs plus the header's and CRC."""
    return 8 * OVERHEAD_BYTES + sum(bits for _, _, bits in streams)


# ----------------------------------------------------------------------------- reading

def read(data: bytes, max_pixels=None) -> DecodedFile:
    """Parse and decode ``.gi`` bytes; raises :class:`CorruptFile` for anything invalid.

    Every size the file declares is checked against :mod:`gi_numba.limits`
    (``max_pixels``) and every stream against its code alphabet *before*
    anything is allocated for it or handed to the entropy coder; a file over
    a limit raises :class:`~gi_numba.errors.GIError` saying which.
    """
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise CorruptFile("not a .gi file (wrong magic number)")
    if len(data) < OVERHEAD_BYTES:
        raise CorruptFile("file is truncated")
    format_of(data[4])
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


def read_header(data: bytes, max_pixels=None) -> Header:
    """The :class:`Header` at the start of ``.gi`` bytes (:data:`HEADER_BYTES` suffice), checked against the limits.

    This reads no stream and checks no CRC: it is what a viewer needs to
    show a file's size before decoding it (the Pillow plugin's ``open``).
    """
    data = bytes(data[:HEADER_BYTES])
    if data[:4] != MAGIC:
        raise CorruptFile("not a .gi file (wrong magic number)")
    if len(data) > 4:
        format_of(data[4])
    if len(data) < HEADER_BYTES:
        raise CorruptFile("file is truncated")
    fields = dict(zip((name for name, _ in HEADER_FIELDS), _HEADER.unpack(data)))
    coding = format_of(fields["version"]).coding
    bits = {a.name: fields[f"{a.name}_bits"] for a in coding.attributes}
    height, width, channels, count = fields["height"], fields["width"], fields["channels"], fields["count"]
    if not (height >= 1 and width >= 1 and channels in (1, 3) and all(1 <= b <= 16 for b in bits.values())):
        raise CorruptFile("file is damaged (impossible header values)")
    check_pixels(height, width, max_pixels, what="the file's image")
    check_gaussians(count, height, width, max_pixels)
    return Header(fields["version"], height, width, channels, count, bits)


def _parse(body, max_pixels):
    header = read_header(body, max_pixels)
    fmt = format_of(header.version)
    count, bits = header.count, header.bits
    stream_bytes = len(body) - _HEADER.size - _QUANTIZERS.size - _COUNT.size
    if count > 8 * stream_bytes:
        raise CorruptFile(f"file is damaged (it declares {count} Gaussians but its streams hold only "
                          f"{stream_bytes} bytes, under one bit per Gaussian)")
    quantizers = _read_quantizers(body, bits, header.version)
    names = fmt.coding.stream_names
    pos = _HEADER.size + _QUANTIZERS.size
    (n_streams,) = _COUNT.unpack_from(body, pos)
    pos += _COUNT.size
    if n_streams != len(names):
        raise CorruptFile("file is damaged (wrong number of streams)")
    columns, infos = [], []
    for index, nbits in enumerate(fmt.coding.stream_depths(bits)):
        start = pos
        model, parameters, payload, pos = fmt.framing.read_record(body, pos, index, nbits, fmt.models)
        columns.append(model.decode(parameters, payload, count, nbits))
        infos.append(StreamInfo(names[index], model.name, pos - start))
    if pos != len(body):
        raise CorruptFile("file is damaged (unexpected trailing bytes)")
    codes = _codes_from_columns(columns, bits, quantizers, header.height, header.width)
    return DecodedFile(header.height, header.width, header.channels, codes, infos, OVERHEAD_BYTES)


def _read_quantizers(body, bits, version):
    """The :class:`QuantizerParams` after the header, each finite."""
    floats = np.array(_QUANTIZERS.unpack_from(body, _HEADER.size), np.float32).astype(np.float64)
    if not np.isfinite(floats).all():
        raise CorruptFile("file is damaged (quantiser parameters are not finite)")
    split = np.split(floats, np.cumsum([n for _, n in QUANTIZER_FIELDS])[:-1])
    return QuantizerParams(bits, **{name: values for (name, _), values in zip(QUANTIZER_FIELDS, split)},
                           version=version)


def _codes_from_columns(columns, bits, quantizers, height, width):
    """The :class:`QuantizedGaussians` of the decoded stream ``columns``, each code checked against its bit
    depth (the cumulative ``y`` too) and its value against :func:`check_decoded_values`."""
    dy, x, a, c, b, red, green, blue = columns
    y = np.cumsum(dy)
    roles = dict(position=(x, y), variance=(a, c), covariance=(b,), colour=(red, green, blue))
    if y.size:
        extremes = {role: (np.array([column.min() for column in group]), np.array([column.max() for column in group]))
                    for role, group in roles.items()}
        for role, (low, high) in extremes.items():
            if low.min() < 0 or high.max() > 2 ** bits[role] - 1:
                raise CorruptFile("file is damaged (code out of range)")
        check_decoded_values(extremes, quantizers, height, width)
    return QuantizedGaussians(quantizers, *(_stacked(*group) for group in roles.values()))


def check_decoded_values(extremes: dict, q: QuantizerParams, height: int, width: int) -> None:
    """Refuse quantiser parameters that decode a file's codes to values no encoder writes (docs/format.md,
    "What a reader checks"): means more than :data:`POSITION_MARGIN` image sizes outside the image,
    log-variances outside ``[MIN_LOG_VARIANCE, ln((MAX_DEVIATION x size)^2)]`` (checked before anything is
    exponentiated, so nothing overflows), colour values outside :data:`COLOUR_RANGE`.

    ``extremes`` holds, by role, each column's smallest and largest code: a value is
    ``code * step + offset``, monotonic in the code, so the extremes of the values come from them.
    """
    size = max(height, width)
    margin = POSITION_MARGIN * size
    low, high = _value_range(extremes["position"], q.position_step, q.position_offset)
    if low.min() < -margin or high[0] > width + margin or high[1] > height + margin:
        raise CorruptFile("file is damaged (Gaussians far outside the image)")
    low, high = _value_range(extremes["variance"], q.variance_step, q.variance_offset)
    if low.min() < MIN_LOG_VARIANCE or high.max() > 2.0 * np.log(MAX_DEVIATION * size):
        raise CorruptFile("file is damaged (variances outside the range an encoder writes)")
    low, high = _value_range(extremes["colour"], q.colour_step, q.colour_offset)
    if low.min() < COLOUR_RANGE[0] or high.max() > COLOUR_RANGE[1]:
        raise CorruptFile("file is damaged (colours outside the range an encoder writes)")


def _value_range(extremes, step, offset):
    """Each column's smallest and largest ``code * step + offset`` from its smallest and largest code."""
    first, last = extremes[0] * step + offset, extremes[1] * step + offset
    return np.minimum(first, last), np.maximum(first, last)


def _stacked(*columns):
    return np.stack(columns, axis=1).astype(np.uint16)
