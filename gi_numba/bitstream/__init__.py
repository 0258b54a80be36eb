"""The ``.gi`` file (docs/format.md): :func:`write` quantised Gaussians to bytes and :func:`read` them back.

- :mod:`.container`: header, quantiser parameters, records and CRC;
- :mod:`.formats`: the versions, each a coding, a framing and its models;
- :mod:`.framing`: how stream records are laid out;
- :mod:`.models`: the entropy models, one class each;
- :mod:`.varint`: varints and bit fields.
"""

from ..errors import CorruptFile
from .container import (HEADER_BYTES, MAGIC, DecodedFile, Header, StreamInfo, estimated_file_bits,
                        estimated_streams, read, read_header, streams_of, write)
from .formats import FORMATS, VERSION, VERSIONS, Format, format_of

__all__ = ["CorruptFile", "DecodedFile", "FORMATS", "Format", "HEADER_BYTES", "Header", "MAGIC", "StreamInfo",
           "VERSION", "VERSIONS", "estimated_file_bits", "estimated_streams", "format_of", "read", "read_header",
           "streams_of", "write"]
