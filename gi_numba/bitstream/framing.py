"""Framings: how a file's stream records are laid out (docs/format.md, "Stream records").

A record holds one stream: the id of its entropy model, the model's
parameters and the payload. Two framings exist:

- :class:`IndexedRecords` (versions 1 and 2): ``index u8 | model u8 |
  parameter bytes u16 | parameters | payload bytes u32 | payload``, a
  model's support as two int32;
- :class:`CompactRecords` (version 3): ``model u8 | parameters | payload
  bytes varint | payload``, each model's parameters saying their own length
  and its support as two varints.

A framing also says what a record costs around its stream
(:meth:`~Framing.record_bits`), for the rate estimates.
"""

import struct

import numpy as np

from ..errors import CorruptFile
from .models import MODELS, EntropyModel, check_support
from .varint import read_varint, varint_bytes, varints


class Framing:
    """The interface of a framing (one instance each: :data:`INDEXED`, :data:`COMPACT`)."""

    def record(self, index: int, model, parameters: bytes, payload: bytes) -> bytes:
        """The bytes of stream ``index``'s record."""
        raise NotImplementedError

    def read_record(self, body: bytes, pos: int, index: int, nbits: int, models: tuple) -> tuple:
        """``(model, its parameters, payload, position after)`` of stream ``index``'s record at ``pos``,
        its model one of ``models``."""
        raise NotImplementedError

    def record_bits(self, stream_bits: float) -> int:
        """Bits of a record's framing (index, model id, lengths) around ``stream_bits`` of its stream."""
        raise NotImplementedError

    def support_bytes(self, low: int, high: int) -> int:
        """Bytes of a model's support ``low, high``."""
        raise NotImplementedError

    def pack_support(self, low: int, high: int) -> bytes:
        raise NotImplementedError

    def read_support(self, data: bytes, pos: int, nbits: int) -> tuple:
        """``((low, high), position after)`` of the support at ``pos``."""
        raise NotImplementedError

    def short_parameters(self) -> CorruptFile:
        """The error of a model's parameters that end early."""
        raise NotImplementedError


def model_at(body: bytes, pos: int, models: tuple) -> EntropyModel:
    """The model of ``models`` whose id is the byte at ``pos``."""
    if pos >= len(body) or body[pos] not in {model.id for model in models}:
        raise CorruptFile("file is damaged (bad stream table)")
    return MODELS[body[pos]]


def payload_at(body: bytes, pos: int, length: int) -> tuple:
    """``(payload, position after)`` of the ``length`` payload bytes at ``pos``."""
    payload = body[pos:pos + length]
    if len(payload) != length:
        raise CorruptFile("file is truncated")
    return payload, pos + length


class IndexedRecords(Framing):
    """Versions 1 and 2: each record says its index and the lengths of its parameters and payload."""

    HEAD = struct.Struct("<BBH")     # index, model id, parameter bytes
    PAYLOAD = struct.Struct("<I")    # payload bytes
    SUPPORT = struct.Struct("<ii")

    def record(self, index, model, parameters, payload) -> bytes:
        return (self.HEAD.pack(index, model.id, len(parameters)) + parameters + self.PAYLOAD.pack(len(payload))
                + payload)

    def read_record(self, body, pos, index, nbits, models) -> tuple:
        stream_id, _, parameter_bytes = self.HEAD.unpack_from(body, pos)
        if stream_id != index:
            raise CorruptFile("file is damaged (bad stream table)")
        model = model_at(body, pos + 1, models)
        pos += self.HEAD.size
        data = body[pos:pos + parameter_bytes]
        if len(data) != parameter_bytes:
            raise CorruptFile("file is truncated")
        parameters, end = model.read_parameters(data, 0, nbits, self)
        if end != len(data):
            raise CorruptFile("file is damaged (bad entropy model)")
        (payload_bytes,) = self.PAYLOAD.unpack_from(body, pos + parameter_bytes)
        payload, pos = payload_at(body, pos + parameter_bytes + self.PAYLOAD.size, payload_bytes)
        return model, parameters, payload, pos

    def record_bits(self, stream_bits) -> int:
        return 8 * (self.HEAD.size + self.PAYLOAD.size)

    def support_bytes(self, low, high) -> int:
        return self.SUPPORT.size

    def pack_support(self, low, high) -> bytes:
        return self.SUPPORT.pack(low, high)

    def read_support(self, data, pos, nbits) -> tuple:
        """The support as stored; the decoder checks it against the alphabet with the payload."""
        if pos + self.SUPPORT.size > len(data):
            raise self.short_parameters()
        return self.SUPPORT.unpack_from(data, pos), pos + self.SUPPORT.size

    def short_parameters(self) -> CorruptFile:
        return CorruptFile("file is damaged (bad entropy model)")


class CompactRecords(Framing):
    """Version 3: a record is its model id, the model's self-delimiting parameters and a varint length."""

    def record(self, index, model, parameters, payload) -> bytes:
        return bytes([model.id]) + parameters + varints([len(payload)]) + payload

    def read_record(self, body, pos, index, nbits, models) -> tuple:
        model = model_at(body, pos, models)
        parameters, pos = model.read_parameters(body, pos + 1, nbits, self)
        payload_bytes, pos = read_varint(body, pos)
        payload, pos = payload_at(body, pos, payload_bytes)
        return model, parameters, payload, pos

    def record_bits(self, stream_bits) -> int:
        return 8 * (1 + varint_bytes(np.array([int(stream_bits) // 8])))

    def support_bytes(self, low, high) -> int:
        return varint_bytes(np.array([low, high]))

    def pack_support(self, low, high) -> bytes:
        return varints(np.array([low, high]))

    def read_support(self, data, pos, nbits) -> tuple:
        """The support, checked against the alphabet before anything it sizes is read."""
        low, pos = read_varint(data, pos)
        high, pos = read_varint(data, pos)
        check_support(low, high, nbits)
        return (low, high), pos

    def short_parameters(self) -> CorruptFile:
        return CorruptFile("file is truncated")


INDEXED, COMPACT = IndexedRecords(), CompactRecords()
