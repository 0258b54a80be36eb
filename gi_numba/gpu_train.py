"""A training state kept on a CUDA device (docs/algorithm.md §4-§5).

:class:`DeviceTrainState` is the GPU twin of
:class:`gi_numba.training.HostTraining`: the one loop,
:func:`gi_numba.training.train`, runs a representation fit on it with
parameters, CAF filters, Adam moments, gradients, the best state, the loss
and the error map all on the GPU; per iteration the host launches kernels and
reads two numbers back (the squared error and a not-finite flag). The
schedule is the same strategy (:mod:`gi_numba.strategy`), and the
state prunes and grows on the device:

- pruning: a positive-definite flag per Gaussian, an exclusive scan and a
  compaction of parameters, filters and both moments in one kernel;
- growth: the L1 error map and its top-k on the device
  (:func:`_select_kernel` finds the k-th largest error by bisection and keeps
  the first pixels of a tie, :func:`_rank_kernel` orders them as the CPU
  does); only the k pixel indices come back, so the new covariances are drawn
  from the fit's seeded generator exactly as on the CPU.
"""

import math
from dataclasses import replace

import numpy as np
from numba import cuda

from . import optim
from .optim import adam_step_sizes, column_rates
from .raster.cuda_device import blocks_for, device_function, exclusive_scan, zero

_LINEAR = 128
adam_update = device_function(optim.adam_update)
_SELECT_THREADS = 256  # most threads of the one-block top-k selection
_ZERO = np.float32(0.0)
_HALF = np.float32(0.5)


@cuda.jit
def _adam_kernel(params, grads, m, v, step_sizes, inv_sqrt_bias2, beta1, beta2, rest1, rest2, eps):
    """One Adam update of value ``i`` of the flat ``(N * 8)`` arrays: :func:`gi_numba.optim.adam_update`.

    ``step_sizes`` holds one step size per parameter column.
    """
    i = cuda.grid(1)
    if i < params.shape[0]:
        params[i], m[i], v[i] = adam_update(params[i], grads[i], m[i], v[i], step_sizes[i % step_sizes.shape[0]],
                                            inv_sqrt_bias2, beta1, beta2, rest1, rest2, eps)


@cuda.jit
def _not_finite_kernel(params, grads, flag):
    """``flag[0] = 1`` when a parameter or a gradient (flat arrays) is NaN or infinite."""
    i = cuda.grid(1)
    if i < params.shape[0] and not (math.isfinite(params[i]) and math.isfinite(grads[i])):
        flag[0] = 1.0


@cuda.jit
def _positive_definite_kernel(params, lam, keep):
    """``keep[g] = 1`` when Gaussian ``g``'s filtered covariance is positive definite, else 0."""
    g = cuda.grid(1)
    if g >= params.shape[0]:
        return
    a = params[g, 2] + lam[g]
    b = params[g, 3]
    c = params[g, 4] + lam[g]
    keep[g] = 1 if (a > 0 and c > 0 and a * c - b * b > 0) else 0


@cuda.jit
def _compact_kernel(params, lam, m, v, keep, position, out_params, out_lam, out_m, out_v):
    """Copy the kept Gaussians' rows, in order, to ``position[g]`` of the ``out_*`` arrays."""
    g = cuda.grid(1)
    if g >= params.shape[0] or keep[g] == 0:
        return
    row = position[g]
    out_lam[row] = lam[g]
    for j in range(params.shape[1]):
        out_params[row, j] = params[g, j]
        out_m[row, j] = m[g, j]
        out_v[row, j] = v[g, j]


@cuda.jit
def _error_kernel(image, target, error):
    """L1 error ``sum_c |image - target|`` of pixel ``p = y W + x`` (channels summed in order)."""
    p = cuda.grid(1)
    width = image.shape[2]
    if p >= image.shape[1] * width:
        return
    y, x = p // width, p % width
    total = abs(image[0, y, x] - target[0, y, x]) + abs(image[1, y, x] - target[1, y, x])
    error[p] = total + abs(image[2, y, x] - target[2, y, x])


@cuda.jit
def _select_kernel(error, k, selected):
    """The ``k`` largest errors' pixels, in pixel order: ``selected[:k]`` (one block).

    Bisection on the value keeps ``count(error >= lo) >= k > count(error >= hi)``
    until ``lo`` and ``hi`` are neighbouring floats: then ``lo`` is the k-th
    largest error. Every pixel above it is selected, and of the pixels equal to
    it the first ones, as the CPU's tie-break by pixel index does.
    """
    counts = cuda.shared.array((2, _SELECT_THREADS), np.int64)
    largest = cuda.shared.array(_SELECT_THREADS, np.float32)
    bounds = cuda.shared.array(2, np.float32)
    n_above = cuda.shared.array(1, np.int64)
    tid, threads = cuda.threadIdx.x, cuda.blockDim.x
    n = error.shape[0]
    chunk = (n + threads - 1) // threads
    first, last = min(tid * chunk, n), min(tid * chunk + chunk, n)
    mine = _ZERO
    for i in range(first, last):
        mine = max(mine, error[i])
    largest[tid] = mine
    cuda.syncthreads()
    if tid == 0:
        for t in range(threads):
            mine = max(mine, largest[t])
        bounds[0], bounds[1] = _ZERO, mine * np.float32(2.0) + np.float32(1.0)
    for _ in range(400):
        cuda.syncthreads()
        lo, hi = bounds[0], bounds[1]
        mid = lo + (hi - lo) * _HALF
        if mid <= lo or mid >= hi:
            break
        above = 0
        for i in range(first, last):
            if error[i] >= mid:
                above += 1
        counts[0, tid] = above
        cuda.syncthreads()
        if tid == 0:
            total = 0
            for t in range(threads):
                total += counts[0, t]
            if total >= k:
                bounds[0] = mid
            else:
                bounds[1] = mid
    threshold = bounds[0]
    above = equal = 0
    for i in range(first, last):
        if error[i] > threshold:
            above += 1
        elif error[i] == threshold:
            equal += 1
    counts[0, tid], counts[1, tid] = above, equal
    cuda.syncthreads()
    if tid == 0:
        run_above = run_equal = 0
        for t in range(threads):
            above, equal = counts[0, t], counts[1, t]
            counts[0, t], counts[1, t] = run_above, run_equal
            run_above += above
            run_equal += equal
        n_above[0] = run_above  # the ties fill the selection from here
    cuda.syncthreads()
    ties_from = n_above[0]
    at_above, at_equal = counts[0, tid], counts[1, tid]
    for i in range(first, last):
        if error[i] > threshold:
            selected[at_above] = i
            at_above += 1
        elif error[i] == threshold:
            if ties_from + at_equal < k:
                selected[ties_from + at_equal] = i
            at_equal += 1


@cuda.jit
def _rank_kernel(error, selected, k, ordered):
    """Sort the selection: larger errors first, ties by pixel index (one thread per selected pixel)."""
    j = cuda.grid(1)
    if j >= k:
        return
    mine, pixel = error[selected[j]], selected[j]
    rank = 0
    for i in range(k):
        other = error[selected[i]]
        if other > mine or (other == mine and selected[i] < pixel):
            rank += 1
    ordered[rank] = pixel


def select_threads(n):
    """Threads of the top-k block: a power of two, about one per 64 pixels, at most 256."""
    threads = 1
    while threads < _SELECT_THREADS and threads * 64 < n:
        threads *= 2
    return threads


def largest_error_pixels_on_device(image, target, k, scratch=None):
    """Rows and columns (host) of the ``k`` pixels with the largest L1 error, as the CPU's ranking.

    ``image`` and ``target`` are ``(3, H, W)`` device arrays.
    """
    height, width = image.shape[1], image.shape[2]
    n = height * width
    error = cuda.device_array(n, np.float32)
    _error_kernel[blocks_for(n), _LINEAR](image, target, error)
    selected = cuda.device_array(k, np.int64)
    ordered = cuda.device_array(k, np.int64)
    _select_kernel[1, select_threads(n)](error, k, selected)
    _rank_kernel[blocks_for(k), _LINEAR](error, selected, k, ordered)
    return np.divmod(ordered.copy_to_host(), width)


class DeviceTrainState:
    """Parameters, filters and Adam moments on the device, room for ``capacity`` Gaussians.

    The live Gaussians are the first :attr:`n_gaussians` rows. It has the
    methods of a training state (:mod:`gi_numba.training`), among them the
    two changes the densification strategy makes,
    :meth:`prune_non_positive_definite` and :meth:`add_gaussians`, each moving
    a Gaussian's moments with it. Its map is the identity.
    """

    penalty = 0.0  # the identity map adds nothing to the squared error

    def __init__(self, state, capacity, rasterizer):
        capacity = max(int(capacity), state.n_gaussians, 1)
        self.rasterizer = rasterizer
        self.n_values = rasterizer.n_values
        self.n_gaussians = state.n_gaussians
        self.adam = replace(state.optimizer, m=None, v=None)  # hyperparameters and step count; moments below
        self._arrays = [self._allocate(capacity) for _ in range(2)]
        params, lam, m, v = self._arrays[0]
        n = self.n_gaussians
        params[:n].copy_to_device(np.ascontiguousarray(state.params))
        lam[:n].copy_to_device(np.ascontiguousarray(state.lam))
        m[:n].copy_to_device(np.ascontiguousarray(state.optimizer.m))
        v[:n].copy_to_device(np.ascontiguousarray(state.optimizer.v))
        self.grads = cuda.device_array((capacity, 8), np.float32)
        self.keep = cuda.device_array(capacity, np.int64)
        self.position = cuda.device_array(capacity + 1, np.int64)
        self.best_params = cuda.device_array((capacity, 8), np.float32)
        self.best_lam = cuda.device_array(capacity, np.float32)
        self.best_n = 0
        self.scalars = cuda.device_array(2, np.float64)  # squared error, not-finite flag
        self.image = cuda.device_array((3, rasterizer.height, rasterizer.width), np.float32)

    @staticmethod
    def _allocate(capacity):
        return (cuda.device_array((capacity, 8), np.float32), cuda.device_array(capacity, np.float32),
                cuda.device_array((capacity, 8), np.float32), cuda.device_array((capacity, 8), np.float32))

    @property
    def live(self):
        """Device views ``(params, lam, m, v)`` of the live Gaussians."""
        n = self.n_gaussians
        return tuple(array[:n] for array in self._arrays[0])

    def loss_and_flag(self):
        """Squared error of the current render and whether anything became NaN; fills the gradients."""
        params, lam, _, _ = self.live
        n = self.n_gaussians
        grads = self.grads[:n]
        self.rasterizer.loss_and_gradients_on_device(params, lam, grads, self.scalars[0:1])
        zero(self.scalars[1:2])
        _not_finite_kernel[blocks_for(8 * n), _LINEAR](params.reshape(8 * n), grads.reshape(8 * n),
                                                        self.scalars[1:2])
        sse, flag = self.scalars.copy_to_host()
        return float(sse), bool(flag)

    def drawn(self):
        """The live ``(params, lam)`` as host arrays (what the last :meth:`loss_and_flag` drew)."""
        return tuple(array.copy_to_host() for array in self.live[:2])

    def step(self, lr, iteration):
        """One Adam step (docs/algorithm.md §4) with learning rate ``lr`` (one, or one per column)."""
        adam = self.adam
        adam.step_count += 1
        params, _, m, v = self.live
        size = 8 * self.n_gaussians
        step_sizes, *constants = adam_step_sizes(column_rates(lr, 8), adam.beta1, adam.beta2, adam.eps,
                                                 float(adam.step_count))
        _adam_kernel[blocks_for(size), _LINEAR](
            params.reshape(size), self.grads[:self.n_gaussians].reshape(size), m.reshape(size), v.reshape(size),
            cuda.to_device(step_sizes), *(np.float32(x) for x in constants))

    def remember_best(self):
        """Copy the live parameters and filters to the best-state buffers (device to device)."""
        params, lam, _, _ = self.live
        n = self.n_gaussians
        self.best_params[:n].copy_to_device(params)
        self.best_lam[:n].copy_to_device(lam)
        self.best_n = n

    def best(self):
        """The remembered best ``(params, lam, None)`` as host arrays (no map of its own: ``None``)."""
        n = self.best_n
        return self.best_params[:n].copy_to_host(), self.best_lam[:n].copy_to_host(), None

    def prune_non_positive_definite(self):
        """Remove Gaussians whose filtered covariance is not positive definite, unless that is all of them."""
        n = self.n_gaussians
        params, lam, m, v = self.live
        _positive_definite_kernel[blocks_for(n), _LINEAR](params, lam, self.keep[:n])
        exclusive_scan(self.keep[:n], self.position[:n + 1])
        kept = int(self.position[n:n + 1].copy_to_host()[0])
        if kept in (0, n):
            return False
        out = self._arrays[1]
        _compact_kernel[blocks_for(n), _LINEAR](params, lam, m, v, self.keep[:n], self.position[:n + 1], *out)
        self._arrays.reverse()
        self.n_gaussians = kept
        return True

    def add_gaussians(self, params, lam):
        """Append Gaussians (host rows of ``params`` and ``lam``) with zero Adam moments."""
        n, k = self.n_gaussians, params.shape[0]
        all_params, all_lam, m, v = self._arrays[0]
        all_params[n:n + k].copy_to_device(np.ascontiguousarray(params, np.float32))
        all_lam[n:n + k].copy_to_device(np.ascontiguousarray(lam, np.float32))
        zero(m[n:n + k].reshape(8 * k))
        zero(v[n:n + k].reshape(8 * k))
        self.n_gaussians = n + k

    def largest_errors(self, k):
        """Rows and columns of the ``k`` worst pixels of the current render (the strategy's ranking)."""
        params, lam, _, _ = self.live
        self.rasterizer.render_on_device(params, lam, self.image)
        return largest_error_pixels_on_device(self.image, self.rasterizer.target, k)

    def residual_colours(self, ys, xs):
        """``target - render`` at pixels ``(ys, xs)`` (``(k, 3)``): the colours that would draw it (identity map)."""
        params, lam, _, _ = self.live
        self.rasterizer.render_on_device(params, lam, self.image)
        render, target = self.image.copy_to_host(), self.rasterizer.target.copy_to_host()
        return (target[:, ys, xs] - render[:, ys, xs]).T.copy()
