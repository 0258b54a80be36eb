"""What the CUDA kernels share, the rasteriser's and the GPU training state's alike.

Formulas of :mod:`.maths` compiled a second time as device functions
(:func:`device_function`), launch sizes (:func:`blocks_for`), and three
one-block primitives with a fixed order, so their results have the same bits
on every run: :func:`zero`, :func:`exclusive_scan` and :func:`sum_into`.
"""

import numpy as np
from numba import cuda

#: Threads per block of the one-thread-per-item kernels.
LINEAR = 128
_SCAN_THREADS = 256  # threads of the one-block scan and sum


def device_function(njit_function):
    """The Python function behind an ``@njit`` formula of :mod:`.maths`, as a CUDA device function."""
    return cuda.jit(device=True)(njit_function.py_func)


def blocks_for(n, threads=LINEAR):
    """Blocks of ``threads`` needed for one thread per item of ``n`` (at least one)."""
    return max((n + threads - 1) // threads, 1)


@cuda.jit
def _zero_kernel(values):
    i = cuda.grid(1)
    if i < values.shape[0]:
        values[i] = 0


def zero(values):
    """Set the 1-D device array ``values`` to 0."""
    _zero_kernel[blocks_for(values.shape[0]), LINEAR](values)


def exclusive_scan(values, out):
    """``out[0] = 0``, ``out[i + 1] = values[0] + ... + values[i]`` for 1-D int64 device arrays."""
    _scan_kernel[1, _SCAN_THREADS](values, out)


@cuda.jit
def _scan_kernel(values, out):
    """``out[0] = 0``, ``out[i + 1] = values[0] + ... + values[i]``; one block, each thread a contiguous chunk."""
    partial = cuda.shared.array(_SCAN_THREADS, np.int64)
    tid = cuda.threadIdx.x
    n = values.shape[0]
    chunk = (n + _SCAN_THREADS - 1) // _SCAN_THREADS
    lo = min(tid * chunk, n)
    hi = min(lo + chunk, n)
    total = 0
    for i in range(lo, hi):
        total += values[i]
    partial[tid] = total
    cuda.syncthreads()
    if tid == 0:
        running = 0
        for i in range(_SCAN_THREADS):
            chunk_total = partial[i]
            partial[i] = running
            running += chunk_total
        out[0] = 0
    cuda.syncthreads()
    running = partial[tid]
    for i in range(lo, hi):
        running += values[i]
        out[i + 1] = running


@cuda.jit
def _sum_kernel(values, out):
    """``out[0] = sum(values)`` in float64, in a fixed order; one block."""
    partial = cuda.shared.array(_SCAN_THREADS, np.float64)
    tid = cuda.threadIdx.x
    total = 0.0
    for i in range(tid, values.shape[0], _SCAN_THREADS):
        total += values[i]
    partial[tid] = total
    cuda.syncthreads()
    if tid == 0:
        for i in range(1, _SCAN_THREADS):
            total += partial[i]
        out[0] = total


def sum_into(values, out):
    """``out[0] = sum(values)`` (1-D float64 device arrays), in a fixed order."""
    _sum_kernel[1, _SCAN_THREADS](values, out)


def to_device(array):
    """A float32 host array as a device array."""
    return cuda.to_device(np.ascontiguousarray(array, np.float32))
