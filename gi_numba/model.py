"""The fitted representation: :class:`GaussianImage` and its ``.npz`` checkpoint (docs/algorithm.md §1).

Checkpoint format (a NumPy ``.npz`` archive, written atomically):

===========  ==========================  ==========================================
key          shape / type                meaning
===========  ==========================  ==========================================
``params``   ``(N, 8)`` float32          ``x, y, a, b, c, r, g, b`` per Gaussian
                                         (means in pixels, unfiltered covariance,
                                         colour weights)
``lam``      ``(N,)`` float32            CAF filter variance of each Gaussian
``meta``     0-d unicode (JSON)          ``format`` (``"gi-numba-model"``),
                                         ``version`` (1), ``height``, ``width``,
                                         ``channels`` (1 = grayscale source),
                                         ``iteration`` (of the kept state),
                                         ``seed``, ``settings`` (the fit's
                                         options), ``psnr``, ``stats`` (run
                                         facts: seconds, interrupted, ...)
===========  ==========================  ==========================================
"""

import io
import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from .display import display_scale
from .errors import GIError
from .fileio import write_atomically
from .image_io import png_bytes
from .layout import COLOUR, COV, MEAN, N_PARAMS, filtered_covariances
from .limits import check_gaussians, check_number, check_pixels
from .parameterisation import sigmoid
from .raster.window import render_window

FORMAT_NAME = "gi-numba-model"
FORMAT_VERSION = 1


@dataclass
class GaussianImage:
    """``N`` 2D Gaussians that together draw an ``height x width`` image.

    ``params`` is ``(N, 8)`` float32 in the layout of :mod:`gi_numba.layout`;
    ``lam`` the per-Gaussian CAF filter variance, so the covariance used for
    rendering is ``S + lam * I`` (docs/algorithm.md §1).
    """

    params: np.ndarray
    lam: np.ndarray
    height: int
    width: int
    channels: int = 3
    iteration: int = 0
    seed: int | None = None
    settings: dict = field(default_factory=dict)
    psnr: float | None = None
    stats: dict = field(default_factory=dict)

    @property
    def n_gaussians(self) -> int:
        return int(self.params.shape[0])

    @property
    def means(self) -> np.ndarray:
        """``(N, 2)`` centres ``(x, y)`` in pixels."""
        return self.params[:, MEAN]

    @property
    def covariances(self) -> np.ndarray:
        """``(N, 3)`` filtered covariances ``(a', b', c') = S + lam I`` used for rendering."""
        return filtered_covariances(self.params, self.lam)

    @property
    def colours(self) -> np.ndarray:
        """``(N, 3)`` colour weights as drawn (after the sigmoid for a compression warm-up model)."""
        colours = self.params[:, COLOUR]
        if self.settings.get("sigmoid_colours"):
            return sigmoid(colours.astype(np.float64)).astype(np.float32)
        return colours

    def drawn_params(self) -> np.ndarray:
        """The ``(N, 8)`` parameters the rasteriser draws (colours as drawn)."""
        params = self.params.copy()
        params[:, COLOUR] = self.colours
        return params

    def scaled_params(self, height, width) -> np.ndarray:
        """Parameters (with the filter folded in) for rendering at ``height x width``.

        The representation is continuous: means scale with the size, and each
        covariance with the square of it (docs/algorithm.md §1, "decoding at another scale").
        Tutorial: step 9 of docs/tutorial.md.
        """
        sx, sy = width / self.width, height / self.height
        cov = self.covariances
        out = self.drawn_params().astype(np.float64)
        out[:, MEAN] *= (sx, sy)
        out[:, COV] = cov * (sx, sx, sy) * (sx, sy, sy)
        return out.astype(np.float32)

    def render(self, height=None, width=None, scale=None, backend="cpu", region=None, max_pixels=None) -> np.ndarray:
        """Render as a float32 ``(height, width, 3)`` image in ``[0, 1]``.

        ``scale`` (e.g. 2) renders at ``round(scale * size)``; ``height`` and
        ``width`` set the size directly. By default the fitted size is used.
        ``region = (x, y, w, h)`` renders only that window of the output (in its
        pixels) and returns ``(h, w, 3)``: only the tiles the window touches are
        rendered, with the same values as the whole image
        (:func:`~gi_numba.raster.window.render_window`).
        The output may hold at most ``max_pixels`` (:mod:`gi_numba.limits`).
        """
        height, width = self._output_size(height, width, scale, max_pixels)
        if (height, width) == (self.height, self.width):
            params, lam = self.drawn_params(), self.lam
        else:
            params, lam = self.scaled_params(height, width), np.zeros(self.n_gaussians, np.float32)
        window = (0, 0, width, height) if region is None else _checked_region(region, height, width)
        return render_window(params, lam, height, width, window, backend)

    def _repr_png_(self):
        """What a notebook shows: the render, the longer side at most 512 pixels (:mod:`gi_numba.display`)."""
        return png_bytes(self.render(scale=display_scale(self.height, self.width)), self.channels)

    def _output_size(self, height, width, scale, max_pixels):
        """The output size asked for, checked to be non-empty and within the pixel limit before anything is drawn."""
        if scale is not None:
            if height is not None or width is not None:
                raise GIError("give either a scale or an output size, not both")
            scale = check_number(scale, "scale", 0, above=True)
            height, width = round(self.height * scale), round(self.width * scale)
        height = self.height if height is None else check_number(height, "output height", 1, integer=True)
        width = self.width if width is None else check_number(width, "output width", 1, integer=True)
        check_pixels(height, width, max_pixels, what="output")
        return height, width

    def save(self, path) -> None:
        """Write the ``.npz`` checkpoint described in the module docstring, atomically."""
        meta = dict(format=FORMAT_NAME, version=FORMAT_VERSION, height=self.height, width=self.width,
                    channels=self.channels, iteration=self.iteration, seed=self.seed,
                    settings=self.settings, psnr=self.psnr, stats=self.stats)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, params=np.asarray(self.params, np.float32),
                            lam=np.asarray(self.lam, np.float32), meta=np.array(json.dumps(meta)))
        write_atomically(path, buffer.getvalue())

    @classmethod
    def load(cls, path, max_pixels=None) -> "GaussianImage":
        """Read a checkpoint written by :meth:`save`; :class:`GIError` if it is not a valid one.

        A checkpoint is input like any other: the arrays' declared types and
        shapes are checked before they are read, and the metadata's types,
        the image size (against ``max_pixels``, :mod:`gi_numba.limits`) and the
        Gaussian count before anything is made from them. Pickles are refused.
        """
        try:
            with zipfile.ZipFile(path) as archive:
                meta = _checked_meta(_read_member(archive, "meta", path), path, max_pixels)
                n = _declared_rows(archive, meta, path, max_pixels)
                params = _read_member(archive, "params", path, (n, N_PARAMS))
                lam = _read_member(archive, "lam", path, (n,))
        except FileNotFoundError:
            raise GIError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise GIError(f"{path}: is a directory, not a model file") from None
        except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, KeyError, zlib.error):
            raise GIError(f"{path}: not a gi-numba model file (.npz checkpoint)") from None
        if not (np.isfinite(params).all() and np.isfinite(lam).all() and (lam >= 0).all()):
            raise GIError(f"{path}: model file is damaged (parameters are NaN, infinite or negative filters)")
        return cls(params=params.astype(np.float32), lam=lam.astype(np.float32), **meta)


#: Largest metadata string a checkpoint may hold (characters).
_MAX_META_CHARS = 1 << 20


def _member_header(archive, name, path):
    """``(shape, dtype)`` an ``.npy`` member of the archive declares, checked against the member's size."""
    info = archive.getinfo(name + ".npy")
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError("unknown .npy version")
        shape, _, dtype = read_header(handle, max_header_size=10_000)
        offset = handle.tell()
    if dtype.hasobject or info.file_size != offset + math.prod(shape) * dtype.itemsize:
        raise GIError(f"{path}: model file is damaged ({name} does not hold what its header declares)")
    return shape, dtype


def _read_member(archive, name, path, shape=None):
    """The array ``name`` of the archive, once its declared type (and ``shape``) are what a checkpoint holds."""
    declared, dtype = _member_header(archive, name, path)
    if name == "meta":
        valid = declared == () and dtype.kind == "U" and dtype.itemsize <= 4 * _MAX_META_CHARS
    else:
        valid = declared == shape and dtype.kind == "f" and dtype.itemsize <= 8
    if not valid:
        raise GIError(f"{path}: model file is damaged ({name} is {dtype} {declared}, not what a checkpoint holds)")
    with archive.open(name + ".npy") as handle:
        array = np.lib.format.read_array(handle, allow_pickle=False)
    return str(array) if name == "meta" else array


def _declared_rows(archive, meta, path, max_pixels):
    """Gaussian count of the checkpoint (rows of ``params``), within the limit for its image size."""
    shape, _ = _member_header(archive, "params", path)
    if len(shape) != 2 or shape[1] != N_PARAMS:
        raise GIError(f"{path}: model file is damaged (params has shape {shape}, not (N, {N_PARAMS}))")
    check_gaussians(shape[0], meta["height"], meta["width"], max_pixels, what=str(path))
    return shape[0]


def _checked_meta(text, path, max_pixels):
    """The constructor arguments a checkpoint's JSON metadata describes, every field type-checked."""
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        raise GIError(f"{path}: not a gi-numba model file (.npz checkpoint)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise GIError(f"{path}: not a gi-numba model file (.npz checkpoint)")
    if meta.get("version") != FORMAT_VERSION:
        raise GIError(f"{path}: model format version {meta.get('version')!r} is not supported "
                      f"(this gi-numba reads version {FORMAT_VERSION})")
    fields = dict(height=meta.get("height"), width=meta.get("width"), channels=meta.get("channels", 3),
                  iteration=meta.get("iteration", 0), seed=meta.get("seed"), settings=meta.get("settings", {}),
                  psnr=meta.get("psnr"), stats=meta.get("stats", {}))
    checks = dict(height=_is_count(fields["height"], 1), width=_is_count(fields["width"], 1),
                  channels=fields["channels"] in (1, 3) and _is_count(fields["channels"], 1),
                  iteration=_is_count(fields["iteration"], 0),
                  seed=fields["seed"] is None or _is_count(fields["seed"], 0),
                  settings=isinstance(fields["settings"], dict), stats=isinstance(fields["stats"], dict),
                  psnr=fields["psnr"] is None or (isinstance(fields["psnr"], (int, float))
                                                 and not isinstance(fields["psnr"], bool)))
    for name, ok in checks.items():
        if not ok:
            raise GIError(f"{path}: model file is damaged ({name} is {fields[name]!r})")
    if not isinstance(fields["settings"].get("sigmoid_colours", False), bool):
        raise GIError(f"{path}: model file is damaged (settings.sigmoid_colours is not true or false)")
    check_pixels(fields["height"], fields["width"], max_pixels, what=f"{path}: the model's image")
    return fields


def _is_count(value, low):
    """Whether ``value`` is a JSON integer (not a boolean) of at least ``low``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _checked_region(region, height, width):
    """``(x, y, w, h)`` as ints, or :class:`GIError` unless it is a non-empty window inside the image."""
    try:
        x, y, w, h = (int(v) for v in region)
    except (TypeError, ValueError):
        raise GIError(f"a region is four integers x, y, width, height; got {region!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > width or y + h > height:
        raise GIError(f"region x={x} y={y} {w}x{h} is not inside the {width}x{height} image")
    return x, y, w, h
