"""``.gi`` files in Pillow: after :func:`register_pillow`, ``Image.open("photo.gi")`` works everywhere.

This follows pillow-heif's convention (``register_heif_opener()``)::

    import gi_numba
    from PIL import Image

    gi_numba.register_pillow()
    with Image.open("photo.gi") as im:      # identified by its magic number, not its name
        print(im.size, im.mode, im.info)    # (768, 512) RGB {'gaussians': 5000, 'bpp': 0.74, 'version': 1}
        im.draft("RGB", (384, 256))         # optional: render at (at least) that size instead
        im.load()                           # decodes: parse, de-quantise, render
    im.save("copy.gi", bpp=0.3)             # encodes (slow: a whole fit), or n_gaussians=2000, or psnr=30

- ``mode`` is ``"RGB"``, or ``"L"`` for a file made from a grayscale image.
- ``info`` holds ``gaussians`` (the count), ``bpp`` (the file's real rate at
  its stored size) and ``version`` (of the ``.gi`` format).
- The representation renders at any size, so :meth:`GIImageFile.draft`
  (what ``Image.thumbnail`` calls) renders at the requested size (keeping the
  aspect ratio, never smaller than asked) instead of decoding and shrinking.
- A damaged or truncated file opens if its header is intact and raises
  ``OSError`` with the decoder's message on ``load()``, as Pillow's own
  formats do; a header over the pixel limit (:mod:`gi_numba.limits`) is
  refused when the file is opened.
- Saving takes :func:`gi_numba.codec.compress`'s options as keywords
  (``iterations``, ``seed``, ``bits``, ``backend``, ...) and exactly one of
  ``bpp``, ``n_gaussians`` and ``psnr`` (:func:`gi_numba.codec.encode`).
  Encoding is a whole fit (``psnr`` and ``bpp`` search the count with up to
  six and five of them): minutes for a photo with the default 50 000
  iterations, and it prints no progress.

Pillow is imported only by this module (``pip install 'gi-numba[pillow]'``;
imageio, which gi-numba needs, depends on it too).
"""

import numpy as np
from PIL import Image, ImageFile

from . import bitstream
from .codec import decoded_model, encode
from .errors import GIError
from .image_io import to_uint8

#: Pillow's name of the format (``im.format``).
FORMAT = "GI"
#: MIME type reported by ``Image.MIME`` (not registered with IANA).
MIME = "image/x-gaussianimage"


def register_pillow():
    """Teach Pillow to open and save ``.gi`` files (idempotent)."""
    Image.register_open(FORMAT, GIImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".gi")
    Image.register_mime(FORMAT, MIME)
    Image.register_decoder(FORMAT, GIDecoder)


def _accept(prefix):
    return prefix[:len(bitstream.MAGIC)] == bitstream.MAGIC


class GIImageFile(ImageFile.ImageFile):
    """A ``.gi`` file opened by Pillow: size, mode and info from the header; pixels on ``load()``."""

    format = FORMAT
    format_description = "GaussianImage++ (2D Gaussian splatting)"

    def _open(self):
        try:
            header = bitstream.read_header(self.fp.read(bitstream.HEADER_BYTES))
        except GIError as exc:
            raise SyntaxError(str(exc)) from None
        self.fp.seek(0, 2)
        nbytes = self.fp.tell()
        self._size = (header.width, header.height)
        self._mode = "L" if header.channels == 1 else "RGB"
        self.info.update(gaussians=header.count, bpp=8.0 * nbytes / (header.width * header.height),
                         version=header.version)
        self.tile = [ImageFile._Tile(FORMAT, (0, 0) + self.size, 0, None)]

    def draft(self, mode, size):
        """Render at the smallest size of the same aspect ratio that covers ``size`` (instead of shrinking later)."""
        if size is None or self.tile == []:
            return None
        width, height = self.size
        scale = max(size[0] / width, size[1] / height)
        self._size = (max(round(width * scale), size[0], 1), max(round(height * scale), size[1], 1))
        self.tile = [ImageFile._Tile(FORMAT, (0, 0) + self.size, 0, None)]
        return self.mode, (0, 0, width * scale, height * scale)


class GIDecoder(ImageFile.PyDecoder):
    """Decodes the whole file at the tile's size: parse, de-quantise, render, round to 8 bits."""

    _pulls_fd = True

    def decode(self, buffer):
        self.fd.seek(0)
        try:
            model = decoded_model(self.fd.read())
            image = model.render(height=self.state.ysize, width=self.state.xsize)
        except GIError as exc:
            raise OSError(str(exc)) from None
        self.set_as_raw(to_uint8(image, 1 if self.mode == "L" else 3).tobytes())
        return -1, 0


def _save(im, fp, filename):
    """``im.save(path_or_file, bpp= | n_gaussians= | psnr=, **compress options)``: encode, write a ``.gi`` file."""
    options = dict(im.encoderinfo)
    n_gaussians, bpp, psnr = (options.pop(key, None) for key in ("n_gaussians", "bpp", "psnr"))
    gray = im.mode in ("1", "L", "LA", "I", "I;16", "F")
    pixels = np.asarray(im.convert("L" if gray else "RGB"))
    try:
        data, _ = encode(pixels, n_gaussians, bpp, psnr, **options)
    except GIError as exc:
        raise ValueError(str(exc)) from None
    fp.write(data)
