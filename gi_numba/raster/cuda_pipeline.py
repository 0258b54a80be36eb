"""The CUDA rasterisation pipeline: project -> bin -> rasterise on the device (docs/algorithm.md §2-§3).

:class:`CudaRasterizer` strings the three steps together (:mod:`.cuda_project`,
:mod:`.cuda_binning`, the kernels of :mod:`.cuda`) as
:class:`~.cpu_pipeline.CpuRasterizer` does on the CPU, keeping its work
buffers on the device between calls.
"""

import numpy as np
from numba import cuda

from .binning import check_entry_budget
from .cuda import reduce_gradients, render_forward, render_loss_backward
from .cuda_binning import DeviceTiles, count_tiles, scatter_entries, sort_lists
from .cuda_device import exclusive_scan, sum_into, to_device, zero
from .cuda_project import DeviceProjection, project_on_device
from .maths import kernel_grid_rows
from .project import tile_grid


class CudaRasterizer:
    """The CPU rasteriser's interface on a CUDA device, plus device-array versions of each call.

    :meth:`render` and :meth:`loss_and_gradients` take and return host arrays;
    the ``*_on_device`` methods take and fill device arrays, so a training
    loop can keep everything on the device (:mod:`gi_numba.gpu_train`).
    Work buffers grow as needed and are reused between calls.
    """

    name = "cuda"
    trains_on_device = True

    def __init__(self, height, width):
        self.height, self.width = int(height), int(width)
        self.n_tiles_x, self.n_tiles_y = tile_grid(self.height, self.width)
        self.n_tiles = self.n_tiles_x * kernel_grid_rows(self.n_tiles_y)
        self.n_values = 3 * self.height * self.width
        self.target = None
        self._tile_count = cuda.device_array(self.n_tiles, np.int64)
        self._cursor = cuda.device_array(self.n_tiles, np.int64)
        self._tile_start = cuda.device_array(self.n_tiles + 1, np.int64)
        self._tile_sse = cuda.device_array(self.n_tiles, np.float64)
        self._buffers = {}

    def _buffer(self, name, rows, shape_tail, dtype):
        """A reusable device array with at least ``rows`` rows (returned sliced to ``rows``)."""
        held = self._buffers.get(name)
        if held is None or held.shape[0] < rows:
            held = cuda.device_array((int(rows * 1.25) + 64,) + shape_tail, dtype)
            self._buffers[name] = held
        return held[:rows]

    def project_and_bin(self, params, lam) -> tuple:
        """:class:`DeviceProjection` and :class:`DeviceTiles` of device ``params`` ``(N, 8)`` and ``lam`` ``(N,)``."""
        n = params.shape[0]
        projection = DeviceProjection(self._buffer("conic", n, (3,), np.float32),
                                      self._buffer("ellipse", n, (4,), np.float32),
                                      self._buffer("box", n, (4,), np.int32))
        count = self._buffer("count", n, (), np.int64)
        gaussian_start = self._buffer("gaussian_start", n + 1, (), np.int64)
        project_on_device(params, lam, self.n_tiles_x, self.n_tiles_y, projection, count)
        exclusive_scan(count, gaussian_start)
        zero(self._tile_count)
        count_tiles(params, projection, self.n_tiles_x, self._tile_count)
        exclusive_scan(self._tile_count, self._tile_start)
        n_entries = int(self._tile_start[self.n_tiles:].copy_to_host()[0])
        check_entry_budget(n_entries, n)
        entry_gaussian = self._buffer("entry_gaussian", n_entries, (), np.int32)
        entry_slot = self._buffer("entry_slot", n_entries, (), np.int32)
        if n_entries:
            zero(self._cursor)
            scatter_entries(params, projection, self.n_tiles_x, gaussian_start, self._tile_start, self._cursor,
                            entry_gaussian, entry_slot)
            sort_lists(self._tile_start, entry_gaussian, entry_slot)
        return projection, DeviceTiles(self._tile_start, entry_gaussian, entry_slot, gaussian_start, n_entries)

    def render_on_device(self, params, lam, image):
        """Clamped render of device ``params``/``lam`` into the device ``image`` ``(3, H, W)``."""
        render_forward(params, *self.project_and_bin(params, lam), self.n_tiles_x, image)
        return image

    def set_target(self, target) -> None:
        """Fix the ``(3, H, W)`` target image of the loss (kept on the device)."""
        self.target = cuda.to_device(np.ascontiguousarray(target, np.float32))

    def loss_and_gradients_on_device(self, params, lam, grads, sse) -> None:
        """Fill device ``grads`` ``(N, 8)`` with ``dL/dparams`` of the MSE and ``sse[0]`` with the squared error."""
        projection, tiles = self.project_and_bin(params, lam)
        partials = self._buffer("partials", max(tiles.n_entries, 1), (8,), np.float32)
        render_loss_backward(params, projection, tiles, self.target, self.n_tiles_x, partials, self._tile_sse)
        sum_into(self._tile_sse, sse)
        reduce_gradients(partials, tiles.gaussian_start, projection.conic, grads)

    def render(self, params, lam, out=None) -> np.ndarray:
        """Clamped render ``(3, H, W)`` float32 on the host, into ``out`` when given."""
        image = cuda.device_array((3, self.height, self.width), np.float32)
        self.render_on_device(to_device(params), to_device(lam), image)
        host = image.copy_to_host()
        if out is None:
            return host
        out[...] = host
        return out

    def loss_and_gradients(self, params, lam) -> tuple:
        """Sum of squared errors of the clamped render and ``dL/dparams`` ``(N, 8)``, on the host."""
        grads = cuda.device_array((params.shape[0], 8), np.float32)
        sse = cuda.device_array(1, np.float64)
        self.loss_and_gradients_on_device(to_device(params), to_device(lam), grads, sse)
        return float(sse.copy_to_host()[0]), grads.copy_to_host()
