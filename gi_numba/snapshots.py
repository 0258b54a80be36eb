"""Pictures of a fit in progress: renders, error maps, Gaussian centres and an animation.

Hand a :class:`Snapshots` to :func:`gi_numba.fit` (``gi fit --snapshots DIR
--gif out.gif``). At the iterations it asks for, the fit loop shows it the
Gaussians that iteration renders (the current state, not the best one), and
it writes, all as PNG into its folder:

- ``render-ITER.png``: the clamped render;
- ``error-ITER.png``: the L1 error ``sum_c |render - target|`` the growth
  step ranks pixels by (docs/algorithm.md §5), scaled so that 1 is white;
- ``centres-ITER.png``: the target, darkened, with each Gaussian's centre as
  a red dot: where densification put them.

With a GIF path it also collects renders at evenly spaced iterations and
writes them as one looping animation when the fit ends.
"""

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from .fileio import make_folder, write_atomically
from .image_io import save_png, to_uint8
from .raster import CpuRasterizer

#: The L1 error (summed over channels) drawn as white in ``error-ITER.png``.
ERROR_WHITE = 1.0


class Snapshots:
    """Writes pictures of a fit at chosen iterations (see the module docstring).

    ``at`` lists the iterations with pictures in ``directory``; by default the
    first iteration and ten evenly spaced ones up to the last. ``gif_frames``
    renders, evenly spaced, make the animation written to ``gif``.
    """

    def __init__(self, directory=None, gif=None, at=None, gif_frames=50, frame_ms=80):
        self.directory = None if directory is None else Path(directory)
        self.gif = None if gif is None else Path(gif)
        self._at = None if at is None else {int(i) for i in at}
        self.gif_frames, self.frame_ms = int(gif_frames), int(frame_ms)
        self.frames = []
        self._target = self._rasterizer = None
        self._pictures, self._frame_at = set(), set()

    def start(self, target, iterations) -> None:
        """Called by the fit before its first iteration with the ``(H, W, 3)`` target."""
        self._target = np.asarray(target, np.float32)
        self._rasterizer = CpuRasterizer(*self._target.shape[:2])
        if self.directory is not None:
            make_folder(self.directory)
            default = {1, *np.linspace(0, iterations, 11)[1:].round().astype(int)}
            self._pictures = self._at if self._at is not None else default
        if self.gif is not None:
            count = max(min(self.gif_frames, iterations), 1)
            self._frame_at = {1, *np.linspace(0, iterations, count + 1)[1:].round().astype(int)}

    def wants(self, iteration) -> bool:
        """Whether :meth:`__call__` should see the Gaussians of ``iteration``."""
        return iteration in self._pictures or iteration in self._frame_at

    def __call__(self, iteration, params, lam):
        """Draw the ``(N, 8)`` Gaussians ``params`` with filters ``lam`` as iteration ``iteration``."""
        render = self._rasterizer.render(np.ascontiguousarray(params, np.float32),
                                         np.ascontiguousarray(lam, np.float32)).transpose(1, 2, 0)
        if iteration in self._frame_at:
            self.frames.append(to_uint8(render))
        if iteration in self._pictures:
            name = f"{iteration:06d}.png"
            save_png(self.directory / f"render-{name}", render)
            save_png(self.directory / f"error-{name}", np.repeat(error_map(render, self._target)[..., None], 3, 2))
            save_png(self.directory / f"centres-{name}", centres_overlay(self._target, params))

    def finish(self) -> None:
        """Write the animation (called by the fit when it ends, also after Ctrl-C)."""
        if self.gif is not None and self.frames:
            data = iio.imwrite("<bytes>", np.stack(self.frames), extension=".gif", duration=self.frame_ms, loop=0)
            write_atomically(self.gif, data)


def error_map(render, target) -> np.ndarray:
    """``sum_c |render - target|`` scaled to ``[0, 1]`` with :data:`ERROR_WHITE` as 1."""
    return np.clip(np.abs(render - target).sum(axis=2) / ERROR_WHITE, 0.0, 1.0)


def centres_overlay(target, params, dim=0.4) -> np.ndarray:
    """The target at ``dim`` brightness with a red 2x2 dot at each Gaussian's centre."""
    picture = np.asarray(target, np.float32) * dim
    height, width = picture.shape[:2]
    centres = params[np.isfinite(params[:, :2]).all(axis=1), :2]
    x = np.clip(np.floor(centres[:, 0]), 0, width - 2).astype(np.int64)
    y = np.clip(np.floor(centres[:, 1]), 0, height - 2).astype(np.int64)
    for dy in (0, 1):
        for dx in (0, 1):
            picture[y + dy, x + dx] = (1.0, 0.1, 0.1)
    return picture

