"""Resource limits: how large an image, a model or a ``.gi`` file may say it is before we allocate for it.

Files come from strangers, and a header may lie about every size. Like
Pillow's ``Image.MAX_IMAGE_PIXELS``, one number bounds everything a file can
make us allocate: the pixel count. It is checked *before* any array is made,
for images we read, for models and ``.gi`` files we load, and for renders at
another size.

- ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`, an 8192x8192 image)
  bounds height x width. Decoding to a PNG costs at most about 24 bytes per
  output pixel (measured), 1.6 GB at the default limit.
- The Gaussian count is bounded by the pixel count (the fit never uses more
  Gaussians than pixels) and by ``max_pixels // 16`` (4 194 304 by default):
  at the usual 30-70 bits per Gaussian, a file that needs more is larger than
  an uncompressed image of the maximum size. Parsing costs about 230 bytes
  per Gaussian (measured), and a ``.gi`` file must spend at least one bit per
  Gaussian (:mod:`gi_numba.bitstream`), so parsing a file of ``B`` bytes
  costs at most about ``1.8 kB x B``.

Every API that reads or renders takes ``max_pixels=``; the CLI has
``--max-pixels``.
"""

import math
import numbers

from .errors import GIError

#: Largest height x width read, decoded or rendered unless the caller allows more (8192 x 8192).
DEFAULT_MAX_PIXELS = 1 << 26

#: Pixels of the limit per Gaussian allowed: the Gaussian bound is ``max_pixels // 16``.
PIXELS_PER_GAUSSIAN_LIMIT = 16


def checked_max_pixels(max_pixels) -> int:
    """``max_pixels`` as an int (``None`` means the default); :class:`GIError` unless it is a positive integer."""
    if max_pixels is None:
        return DEFAULT_MAX_PIXELS
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise GIError(f"the pixel limit must be a positive integer, got {max_pixels!r}")
    return max_pixels


def check_pixels(height, width, max_pixels=None, what="image") -> None:
    """:class:`GIError` unless ``height x width`` is a non-empty size within the pixel limit."""
    max_pixels = checked_max_pixels(max_pixels)
    if height < 1 or width < 1:
        raise GIError(f"{what} size {width}x{height} is empty")
    if height * width > max_pixels:
        raise GIError(f"{what} size {width}x{height} ({height * width} pixels) is over the limit of "
                      f"{max_pixels} pixels (raise it with --max-pixels / max_pixels= if you trust the input)")


def max_gaussians(height, width, max_pixels=None) -> int:
    """The most Gaussians a model or file of ``height x width`` may hold (see the module notes)."""
    return min(height * width, checked_max_pixels(max_pixels) // PIXELS_PER_GAUSSIAN_LIMIT)


def check_gaussians(count, height, width, max_pixels=None, what="file") -> None:
    """:class:`GIError` unless ``count`` Gaussians is within :func:`max_gaussians` for that size."""
    limit = max_gaussians(height, width, max_pixels)
    if count > limit:
        raise GIError(f"{what} declares {count} Gaussians, over the limit of {limit} for a "
                      f"{width}x{height} image")


def check_number(value, name, low=None, high=None, *, integer=False, above=False) -> int | float:
    """``value`` if it is a finite real number in range, else :class:`GIError`.

    ``low`` is inclusive, or exclusive with ``above``; ``high`` is inclusive.
    Used at every API and CLI boundary for numeric options (a seed, a rate, a
    scale), so that ``inf``, ``nan`` or a negative count is one clear sentence
    instead of an error deep inside NumPy.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GIError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(value):
        raise GIError(f"{name} must be a finite number, got {value}")
    if integer and value != int(value):
        raise GIError(f"{name} must be an integer, got {value}")
    too_low = low is not None and (value <= low if above else value < low)
    if too_low or (high is not None and value > high):
        if low is not None and high is not None:
            bounds = f"between {low} and {high}"
        else:
            bounds = (f"at most {high}" if low is None else "positive" if above and low == 0
                      else "a positive integer" if integer and low == 1
                      else f"{'above' if above else 'at least'} {low}")
        raise GIError(f"{name} must be {bounds}, got {value}")
    return int(value) if integer else float(value)
