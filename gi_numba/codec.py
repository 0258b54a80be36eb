"""Image codec, the public API: ``compress(image, N) -> bytes``, ``decompress(bytes) -> image`` (docs/algorithm.md §6).

- :func:`compress` (:mod:`gi_numba.encoder`): warm-up fit, quantisation-aware
  training, quantisation and rate-distortion optimised codes, the ``.gi`` file;
- :func:`compress_to_rate`, :func:`compress_to_psnr` and :func:`encode`
  (:mod:`gi_numba.rate_control`): an encode at a target rate or quality;
- :func:`decompress` (:mod:`gi_numba.decoder`): parse, de-quantise, render.

The file itself is :mod:`gi_numba.bitstream`'s (docs/format.md).
"""

from .decoder import decoded_model, decompress, model_of_codes
from .encoder import EncodeReport, compress
from .rate_control import compress_to_psnr, compress_to_rate, encode

__all__ = ["EncodeReport", "compress", "compress_to_psnr", "compress_to_rate", "decoded_model", "decompress",
           "encode", "model_of_codes"]
