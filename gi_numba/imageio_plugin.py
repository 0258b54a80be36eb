"""``.gi`` files in imageio v3: ``imageio.v3.imread("photo.gi")`` works once ``gi_numba`` is imported.

imageio finds plugins through two tables, ``imageio.config.known_plugins``
(name -> where the plugin class lives, imported lazily) and
``known_extensions`` (file extension -> plugins to try first).
:func:`register_imageio` adds :class:`GIPlugin` to both; ``import gi_numba``
calls it, so no explicit registration is needed::

    import gi_numba
    import imageio.v3 as iio

    image = iio.imread("photo.gi")                  # uint8 (H, W, 3), or (H, W) for a grayscale source
    image = iio.imread("photo.gi", scale=2)         # the representation renders at any size
    props = iio.improps("photo.gi")                 # shape and dtype from the header alone
    iio.imwrite("copy.gi", image, bpp=0.3)          # encodes (slow: a whole fit), or n_gaussians=2000

The plugin recognises a file by its magic number, so bytes and files of any
name work when the plugin is named (``plugin="gi"``). Reading takes
``scale``, ``height``/``width`` and ``max_pixels``; writing takes
:func:`gi_numba.codec.compress`'s options and exactly one of ``bpp``,
``n_gaussians`` and ``psnr`` (:func:`gi_numba.codec.encode`).
"""

import imageio.config
import numpy as np
from imageio.config.extensions import FileExtension
from imageio.core.request import URI_BYTES, InitializationError, IOMode
from imageio.core.v3_plugin_api import ImageProperties, PluginV3

from . import bitstream
from .codec import decoded_model, encode
from .image_io import to_uint8

#: The plugin's name in ``imageio.config.known_plugins``.
NAME = "gi"


def register_imageio() -> None:
    """Add :class:`GIPlugin` to imageio's plugin and extension tables (idempotent)."""
    imageio.config.known_plugins[NAME] = imageio.config.PluginConfig(
        name=NAME, class_name="GIPlugin", module_name=__name__)
    formats = imageio.config.known_extensions.setdefault(".gi", [])
    if not any(NAME in f.priority for f in formats):
        formats.insert(0, FileExtension(extension=".gi", priority=[NAME], name="GI",
                                        description="GaussianImage++ (2D Gaussian splatting)"))


class GIPlugin(PluginV3):
    """imageio v3 plugin for ``.gi`` files (see the module docstring)."""

    def __init__(self, request):
        super().__init__(request)
        if request.mode.io_mode == IOMode.read:
            file = request.get_file()
            if file.read(len(bitstream.MAGIC)) != bitstream.MAGIC:
                raise InitializationError("not a .gi file")
            file.seek(0)
            self._data = None
        elif request.extension not in (".gi", None) and request.format_hint != ".gi":
            raise InitializationError("gi writes .gi files")

    def _bytes(self):
        if self._data is None:
            self._data = self.request.get_file().read()
        return self._data

    def read(self, *, index=0, scale=None, height=None, width=None, max_pixels=None) -> np.ndarray:
        """The decoded image as uint8 ``(H, W, 3)`` (``(H, W)`` for a grayscale source); a file holds one image."""
        if index not in (0, None, Ellipsis):
            raise IndexError(f"a .gi file holds one image, not image {index}")
        model = decoded_model(self._bytes(), max_pixels)
        image = to_uint8(model.render(height=height, width=width, scale=scale, max_pixels=max_pixels),
                         model.channels)
        return image[None] if index is Ellipsis else image

    def iter(self):
        yield self.read()

    def write(self, ndimage, *, is_batch=False, bpp=None, n_gaussians=None, psnr=None, **options) -> bytes | None:
        """Encode one image (uint8, uint16 or float in ``[0, 1]``) at ``bpp``, with ``n_gaussians`` or at ``psnr`` dB.

        Returns the file's bytes when writing to ``"<bytes>"`` (as imageio's plugins do), else None.
        """
        image = np.asarray(ndimage)
        if is_batch:
            if image.shape[0] != 1:
                raise ValueError("a .gi file holds one image")
            image = image[0]
        data, _ = encode(image, n_gaussians, bpp, psnr, **options)
        self.request.get_file().write(data)
        return data if self.request._uri_type == URI_BYTES else None

    def properties(self, index=0):
        """Shape and dtype from the header alone (nothing is decoded)."""
        header = bitstream.read_header(self.request.get_file().read(bitstream.HEADER_BYTES))
        self.request.get_file().seek(0)
        shape = (header.height, header.width) + (() if header.channels == 1 else (3,))
        if index is Ellipsis:
            return ImageProperties(shape=(1,) + shape, dtype=np.dtype(np.uint8), n_images=1, is_batch=True)
        return ImageProperties(shape=shape, dtype=np.dtype(np.uint8))

    def metadata(self, index=0, exclude_applied=True) -> dict:
        """``gaussians``, ``bpp`` and ``version`` of the file, from its header and size."""
        data = self._bytes()
        header = bitstream.read_header(data)
        return dict(gaussians=header.count, bpp=8.0 * len(data) / (header.height * header.width),
                    version=header.version)
