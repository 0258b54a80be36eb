"""Integers as bytes: LEB128 varints and fixed-width bit fields (docs/format.md, "Integers").

A varint is a run of bytes, low 7 bits first, each but the last with its
high bit set; the file's varints are at most 5 bytes (32 bits). Bit fields
pack ``n``-bit codes most significant bit first, with no padding between
codes and zero bits after the last to fill the byte.
"""

import numpy as np

from ..errors import CorruptFile

#: The longest varint a file may hold, in bytes.
MAX_VARINT_BYTES = 5


def varints(values) -> bytes:
    """``values`` (non-negative integers) as LEB128 varints, one after another."""
    out = bytearray()
    for v in np.asarray(values).tolist():
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


def varint_bytes(values) -> int:
    """Bytes of ``values`` as varints (:func:`varints`), without writing them."""
    values = np.asarray(values)
    return int(np.sum(1 + (values >= 1 << 7) + (values >= 1 << 14) + (values >= 1 << 21) + (values >= 1 << 28)))


def read_varint(body: bytes, pos: int) -> tuple:
    """``(value, position after)`` of the varint (at most :data:`MAX_VARINT_BYTES`) at ``pos``."""
    value = 0
    for shift in range(0, 7 * MAX_VARINT_BYTES, 7):
        if pos >= len(body):
            raise CorruptFile("file is truncated")
        byte = body[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise CorruptFile("file is damaged (varint longer than 5 bytes)")


def read_varints(data: bytes, n: int, largest: int) -> np.ndarray:
    """``n`` varints that make up all of ``data``, each at most ``largest``, as int64 ``[n]``.

    One of more than :data:`MAX_VARINT_BYTES`, one over ``largest``, or bytes
    left after the last make the data invalid. Decoded with array
    operations, all at once.
    """
    if n < 1 or n > (1 << 16) + 1 or len(data) > MAX_VARINT_BYTES * n:
        raise CorruptFile("file is damaged (bad entropy model)")
    raw = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(raw < 0x80)
    if ends.size != n or ends[-1] != raw.size - 1:
        raise CorruptFile("file is damaged (bad entropy model)")
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > MAX_VARINT_BYTES:
        raise CorruptFile("file is damaged (bad entropy model)")
    shifts = 7 * (np.arange(raw.size) - np.repeat(starts, lengths))
    values = np.add.reduceat((raw & 0x7F).astype(np.int64) << shifts, starts)
    if values.max() > largest:
        raise CorruptFile("file is damaged (bad entropy model)")
    return values


def pack_bits(symbols: np.ndarray, nbits: int) -> bytes:
    """``symbols`` (int64 ``[n]``, each below ``2^nbits``) as ``nbits``-bit fields, MSB first."""
    bits = ((symbols[:, None] >> np.arange(nbits - 1, -1, -1)) & 1).astype(np.uint8)
    return np.packbits(bits.ravel()).tobytes()


def packed_bytes(count: int, nbits: int) -> int:
    """Bytes of ``count`` fields of ``nbits`` bits (:func:`pack_bits`)."""
    return -(-count * nbits // 8)


def unpack_bits(payload: bytes, count: int, nbits: int) -> np.ndarray:
    """The ``count`` ``nbits``-bit fields (at most 16 bits) packed by :func:`pack_bits`, as int64 ``[count]``.

    Field ``i`` starts at bit ``i * nbits``: it lies within the 24 bits of the
    three bytes from ``i * nbits // 8``, shifted by what is left of them.
    """
    data = np.frombuffer(payload + b"\0\0", np.uint8).astype(np.uint32)
    offsets = np.arange(count, dtype=np.int64) * nbits
    first, skip = offsets >> 3, offsets & 7
    window = (data[first] << 16) | (data[first + 1] << 8) | data[first + 2]
    return ((window >> (24 - nbits - skip)) & ((1 << nbits) - 1)).astype(np.int64)
