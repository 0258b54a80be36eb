"""The fitted representation: :class:`GaussianImage` and its ``.npz`` checkpoint (ALGORITHM.md §1).

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
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .errors import GIError
from .fileio import write_atomically
from .layout import COLOUR, COV, MEAN, N_PARAMS
from .raster import make_rasterizer
from .raster.maths import TILE, TILE_ROWS

FORMAT_NAME = "gi-numba-model"
FORMAT_VERSION = 1


@dataclass
class GaussianImage:
    """``N`` 2D Gaussians that together draw an ``height x width`` image.

    ``params`` is ``(N, 8)`` float32 in the layout of :mod:`gi_numba.layout`;
    ``lam`` the per-Gaussian CAF filter variance, so the covariance used for
    rendering is ``S + lam * I`` (ALGORITHM.md §1).
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
    def n_gaussians(self):
        return int(self.params.shape[0])

    @property
    def means(self):
        """``(N, 2)`` centres ``(x, y)`` in pixels."""
        return self.params[:, MEAN]

    @property
    def covariances(self):
        """``(N, 3)`` filtered covariances ``(a', b', c') = S + lam I`` used for rendering."""
        cov = self.params[:, COV].astype(np.float64)
        cov[:, 0] += self.lam
        cov[:, 2] += self.lam
        return cov

    @property
    def colours(self):
        """``(N, 3)`` colour weights as drawn (after the sigmoid for a compression warm-up model)."""
        colours = self.params[:, COLOUR]
        if self.settings.get("sigmoid_colours"):
            return (1.0 / (1.0 + np.exp(-colours.astype(np.float64)))).astype(np.float32)
        return colours

    def drawn_params(self):
        """The ``(N, 8)`` parameters the rasteriser draws (colours as drawn)."""
        params = self.params.copy()
        params[:, COLOUR] = self.colours
        return params

    def scaled_params(self, height, width):
        """Parameters (with the filter folded in) for rendering at ``height x width``.

        The representation is continuous: means scale with the size, and each
        covariance with the square of it (ALGORITHM.md §1, "decoding at another scale").
        Tutorial: step 9 of docs/tutorial.md.
        """
        sx, sy = width / self.width, height / self.height
        cov = self.covariances
        out = self.drawn_params().astype(np.float64)
        out[:, 0] *= sx
        out[:, 1] *= sy
        out[:, 2] = cov[:, 0] * sx * sx
        out[:, 3] = cov[:, 1] * sx * sy
        out[:, 4] = cov[:, 2] * sy * sy
        return out.astype(np.float32)

    def render(self, height=None, width=None, scale=None, backend="cpu", region=None):
        """Render as a float32 ``(height, width, 3)`` image in ``[0, 1]``.

        ``scale`` (e.g. 2) renders at ``round(scale * size)``; ``height`` and
        ``width`` set the size directly. By default the fitted size is used.
        ``region = (x, y, w, h)`` renders only that window of the output (in its
        pixels) and returns ``(h, w, 3)``: the canvas starts at the kernel tile
        boundary at or before ``(x, y)`` and ends at the one after the window
        (or the image's edge), so only the tiles the window touches are
        rendered, with the same tile lists as the whole image (same values).
        """
        height, width = self._output_size(height, width, scale)
        if (height, width) == (self.height, self.width):
            params, lam = self.drawn_params(), self.lam
        else:
            params, lam = self.scaled_params(height, width), np.zeros(self.n_gaussians, np.float32)
        params = np.array(params, np.float32)
        x0 = y0 = 0
        x, y, w, h = (0, 0, width, height) if region is None else _checked_region(region, height, width)
        y1 = height
        if region is not None:
            x0, y0 = x - x % TILE, y - y % TILE_ROWS
            y1 = min(-(-(y + h) // TILE_ROWS) * TILE_ROWS, height)
            params[:, 0] -= x0
            params[:, 1] -= y0
        rasterizer = make_rasterizer(backend, y1 - y0, x + w - x0)
        planar = rasterizer.render(params, np.ascontiguousarray(lam, np.float32))
        return np.ascontiguousarray(planar[:, y - y0:y - y0 + h, x - x0:].transpose(1, 2, 0))

    def _output_size(self, height, width, scale):
        if scale is not None:
            if height is not None or width is not None:
                raise GIError("give either a scale or an output size, not both")
            if not scale > 0:
                raise GIError(f"scale must be positive, got {scale}")
            height, width = round(self.height * scale), round(self.width * scale)
        height = self.height if height is None else int(height)
        width = self.width if width is None else int(width)
        if height < 1 or width < 1:
            raise GIError(f"output size {width}x{height} is empty")
        return height, width

    def save(self, path):
        """Write the ``.npz`` checkpoint described in the module docstring, atomically."""
        meta = dict(format=FORMAT_NAME, version=FORMAT_VERSION, height=self.height, width=self.width,
                    channels=self.channels, iteration=self.iteration, seed=self.seed,
                    settings=self.settings, psnr=self.psnr, stats=self.stats)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, params=np.asarray(self.params, np.float32),
                            lam=np.asarray(self.lam, np.float32), meta=np.array(json.dumps(meta)))
        write_atomically(path, buffer.getvalue())

    @classmethod
    def load(cls, path):
        """Read a checkpoint written by :meth:`save`; :class:`GIError` if it is not one."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                params, lam, meta = archive["params"], archive["lam"], json.loads(str(archive["meta"]))
        except FileNotFoundError:
            raise GIError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise GIError(f"{path}: is a directory, not a model file") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
            raise GIError(f"{path}: not a gi-numba model file (.npz checkpoint)") from None
        if meta.get("format") != FORMAT_NAME:
            raise GIError(f"{path}: not a gi-numba model file (.npz checkpoint)")
        if meta.get("version") != FORMAT_VERSION:
            raise GIError(f"{path}: model format version {meta.get('version')} is not supported "
                          f"(this gi-numba reads version {FORMAT_VERSION})")
        if params.ndim != 2 or params.shape[1] != N_PARAMS or lam.shape != (params.shape[0],):
            raise GIError(f"{path}: model file is damaged (unexpected array shapes)")
        return cls(params=params.astype(np.float32), lam=lam.astype(np.float32),
                   height=int(meta["height"]), width=int(meta["width"]), channels=int(meta.get("channels", 3)),
                   iteration=int(meta.get("iteration", 0)), seed=meta.get("seed"),
                   settings=meta.get("settings", {}), psnr=meta.get("psnr"), stats=meta.get("stats", {}))


def _checked_region(region, height, width):
    """``(x, y, w, h)`` as ints, or :class:`GIError` unless it is a non-empty window inside the image."""
    try:
        x, y, w, h = (int(v) for v in region)
    except (TypeError, ValueError):
        raise GIError(f"a region is four integers x, y, width, height; got {region!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > width or y + h > height:
        raise GIError(f"region x={x} y={y} {w}x{h} is not inside the {width}x{height} image")
    return x, y, w, h
