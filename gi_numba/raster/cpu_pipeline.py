"""The CPU rasterisation pipeline: project -> bin -> rasterise (docs/algorithm.md §2-§3).

:class:`CpuRasterizer` strings the three plain steps together and keeps the
work buffers between calls, so a training step allocates almost nothing.
"""

import numpy as np

from .binning import bin_gaussians
from .cpu import (TileScratch, aligned_zeros, image_to_tiles, longest_list, reduce_gradients, render_forward,
                  render_loss_backward)
from .project import project_gaussians, tile_grid


class CpuRasterizer:
    """Renders and differentiates ``(N, 8)`` Gaussians on an ``H x W`` canvas.

    Images are channel-planar ``(3, H, W)`` float32.
    """

    name = "cpu"
    trains_on_device = False

    def __init__(self, height, width):
        self.height, self.width = int(height), int(width)
        self.n_values = 3 * self.height * self.width
        self.n_tiles_x, self.n_tiles_y = tile_grid(self.height, self.width)
        self._partials = aligned_zeros((0, 8))
        self._scratch = None

    def _project_and_bin(self, params, lam):
        conic, box, ellipse = project_gaussians(params, lam, self.n_tiles_x, self.n_tiles_y)
        return conic, bin_gaussians(params, box, ellipse, self.n_tiles_x, self.n_tiles_y)

    def _scratch_for(self, tiles, backward):
        """Work buffers for ``tiles``: the backward pass keeps the alphas of the longest tile, a render none."""
        longest = longest_list(tiles.tile_start) if backward else 0
        if self._scratch is None or not self._scratch.fits(longest):
            self._scratch = TileScratch.allocate(int(longest * 1.25) + 8 if backward else 0)
        return self._scratch

    def render(self, params, lam, out=None) -> np.ndarray:
        """Clamped render ``(3, H, W)`` float32, into ``out`` when given."""
        params = np.ascontiguousarray(params, np.float32)
        conic, tiles = self._project_and_bin(params, lam)
        if out is None:
            out = np.empty((3, self.height, self.width), np.float32)
        render_forward(params, conic, tiles, self.n_tiles_x, self._scratch_for(tiles, backward=False), out)
        return out

    def set_target(self, target) -> None:
        """Fix the ``(3, H, W)`` target image of :meth:`loss_and_gradients`."""
        tiles = image_to_tiles(np.ascontiguousarray(target, np.float32))
        self._target_tiles = aligned_zeros(tiles.shape)
        self._target_tiles[:] = tiles

    def loss_and_gradients(self, params, lam) -> tuple:
        """Sum of squared errors of the clamped render and ``dL/dparams`` ``(N, 8)`` of the MSE."""
        conic, tiles = self._project_and_bin(params, lam)
        n_entries = tiles.entry_gaussian.size
        if self._partials.shape[0] < n_entries:
            self._partials = aligned_zeros((int(n_entries * 1.25) + 64, 8))
        sse = render_loss_backward(params, conic, tiles, self._target_tiles, self.height, self.width,
                                   self.n_tiles_x, self._scratch_for(tiles, backward=True), self._partials)
        grads = np.empty_like(params)
        reduce_gradients(self._partials, tiles.gaussian_start, conic, grads)
        return sse, grads
