"""The CUDA kernels against the CPU backend, run under Numba's CUDA simulator.

``test_cuda.py`` starts this script in a subprocess with
``NUMBA_ENABLE_CUDASIM=1`` (the simulator must be chosen before Numba's CUDA
target is imported). It prints one JSON object with the differences found.
"""

import json
import sys
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from conftest import random_gaussians  # noqa: E402

import gi_numba  # noqa: E402
from gi_numba.encoder import qat_phase  # noqa: E402
from gi_numba.raster import Rasterizer, make_rasterizer  # noqa: E402
from gi_numba.raster.cuda_pipeline import CudaRasterizer  # noqa: E402
from gi_numba.raster.cpu_pipeline import CpuRasterizer  # noqa: E402
from gi_numba.strategy import TrainState  # noqa: E402
from gi_numba.training import HostTraining, TrainingState, train  # noqa: E402


#: Iterations of the simulated fit (it grows every iteration, halving the learning rate every 2) and of its QAT.
FIT_ITERATIONS = 6
QAT_ITERATIONS = 2


def make_shared_arrays_thread_safe():
    """Make the simulator's ``cuda.shared.array`` give every thread of a block the same array.

    The simulator (numba-cuda 0.30) looks the block's array up by calling
    line and creates it when missing, without a lock: two threads switched
    between the lookup and the store get two arrays, and the block then reads
    uninitialised memory; switching threads every 0.1 ms (below) makes that
    likely. This replacement does the same lookup under a lock.
    """
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support
    from numba.core import types
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:
            raise RuntimeError("the kernels use static, unaligned shared arrays only")
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with lock:
            if key not in self._allocations:
                self._allocations[key] = np.empty(shape, dtype)
            return self._allocations[key]

    kernelapi.FakeCUDAShared.array = array


def relative_difference(actual, expected):
    """Largest ``|actual - expected|`` relative to the largest ``|expected|`` of its column."""
    scale = np.abs(expected).max(axis=0) + 1e-30
    return float((np.abs(actual - expected) / scale).max())


def compare_kernels(height, width, n, seed):
    """Tile lists, render, loss and gradients of both backends on random Gaussians."""
    rng = np.random.default_rng(seed)
    params, lam = random_gaussians(rng, n, height, width)
    target = rng.uniform(0, 1, (3, height, width)).astype(np.float32)
    cpu, gpu = CpuRasterizer(height, width), CudaRasterizer(height, width)
    cpu.set_target(target)
    gpu.set_target(target)
    tile_start, entry_gaussian, entry_slot, _, gaussian_start = cpu._project_and_bin(params, lam)[1]
    cpu_lists = [tile_start, entry_gaussian, entry_slot, gaussian_start]
    _, gpu_tiles = gpu.project_and_bin(*(gpu_array(a) for a in (params, lam)))
    gpu_lists = [gpu_tiles.tile_start, gpu_tiles.entry_gaussian, gpu_tiles.entry_slot, gpu_tiles.gaussian_start]
    same_lists = all(np.array_equal(c, g.copy_to_host()) for c, g in zip(cpu_lists, gpu_lists))
    cpu_render, gpu_render = cpu.render(params, lam), gpu.render(params, lam)
    sse_cpu, grad_cpu = cpu.loss_and_gradients(params, lam)
    sse_gpu, grad_gpu = gpu.loss_and_gradients(params, lam)
    conditioned = well_conditioned(params, lam)
    return dict(same_lists=bool(same_lists), n_entries=int(gpu_tiles.n_entries),
                n_conditioned=int(conditioned.sum()), forward=float(np.abs(cpu_render - gpu_render).max()),
                loss=abs(sse_cpu - sse_gpu) / sse_cpu,
                gradients=relative_difference(grad_gpu[conditioned], grad_cpu[conditioned]),
                gradients_all=relative_difference(grad_gpu, grad_cpu))


def well_conditioned(params, lam):
    """Gaussians whose filtered covariance is far from singular: ``det >= 0.1 a' c'``.

    Near-singular ones have a huge conic, and the chain rule to ``(a, b, c)``
    then cancels large terms: float32 rounding alone moves their covariance
    gradients by ~1e-4 relative on either backend (both differ that much from
    the float64 reference), so they are compared with a looser bound.
    """
    a, b, c = params[:, 2] + lam, params[:, 3], params[:, 4] + lam
    return (a > 0) & (c > 0) & (a * c - b * b >= 0.1 * a * c)


def compare_growth_and_pruning(seed):
    """Top-k pixels (with ties) and pruning on the device against the host functions."""
    from gi_numba.gpu_train import DeviceTrainState, largest_error_pixels_on_device
    from gi_numba.strategy import TrainState
    from gi_numba.strategy.densify import largest_error_pixels
    rng = np.random.default_rng(seed)
    height, width = 24, 40
    target = rng.uniform(0, 1, (3, height, width)).astype(np.float32)
    render = np.clip(target + rng.normal(0, 0.3, target.shape), 0, 1).astype(np.float32)
    render[:, :4] = target[:, :4]  # ties at zero error
    render[:, 5, :6] = 1.0
    target[:, 5, :6] = 0.0         # ties at the largest error
    same_topk = []
    for k in (1, 5, 30, 400, height * width):
        expected = largest_error_pixels(render.transpose(1, 2, 0), target.transpose(1, 2, 0), k)
        actual = largest_error_pixels_on_device(gpu_array(render), gpu_array(target), k)
        same_topk.append(all(np.array_equal(a, e) for a, e in zip(actual, expected)))
    params, lam = random_gaussians(rng, 30, height, width)
    params[:3, 3] = 1e3  # not positive definite: pruned
    host = TrainState.fresh(params, lam)
    host.optimizer.m[:] = rng.normal(size=host.optimizer.m.shape)
    host.optimizer.v[:] = rng.uniform(size=host.optimizer.v.shape)
    device = DeviceTrainState(host, 40, CudaRasterizer(height, width))
    pruned = (device.prune_non_positive_definite(), host.prune_non_positive_definite())
    new = rng.uniform(0, 5, (4, 8)).astype(np.float32)
    device.add_gaussians(new, np.full(4, 0.5, np.float32))
    host.add_gaussians(new, np.full(4, 0.5, np.float32))
    on_device = [a.copy_to_host() for a in device.live]
    on_host = (host.params, host.lam, host.optimizer.m, host.optimizer.v)
    same_state = all(np.array_equal(d, h) for d, h in zip(on_device, on_host))
    interfaces = [isinstance(device.rasterizer, Rasterizer), isinstance(device, TrainingState)]
    return dict(same_topk=same_topk, pruned=pruned, n=(device.n_gaussians, host.n_gaussians), same_state=same_state,
                residual_colours=compare_residual_colours(device, host, target, rng), interfaces=interfaces)


def compare_residual_colours(device, host, target, rng):
    """Largest difference of the colours growth would start at (``target - render`` at some pixels)."""
    from gi_numba.maps import IdentityMap
    height, width = target.shape[1:]
    device.rasterizer.set_target(target)
    cpu = CpuRasterizer(height, width)
    cpu.set_target(target)
    on_host = HostTraining(host, cpu, np.ascontiguousarray(target.transpose(1, 2, 0)), IdentityMap())
    ys, xs = rng.integers(0, height, 10), rng.integers(0, width, 10)
    return float(np.abs(device.residual_colours(ys, xs) - on_host.residual_colours(ys, xs)).max())


def gpu_array(array):
    from numba import cuda
    return cuda.to_device(np.ascontiguousarray(array))


def psnr_trajectory(image, n, iterations, backend, recipe="paper"):
    """PSNR at every iteration of a fit."""
    seen = []
    gi_numba.fit(image, n, iterations=iterations, seed=0, recipe=recipe, backend=backend, progress=seen.append,
                 progress_every=1)
    return [p.psnr for p in seen], seen[-1].n_gaussians


def qat_trajectory(image, n, iterations, backend, version=1):
    """PSNR at every iteration of quantisation-aware training (of a ``.gi`` ``version``) rasterised on ``backend``.

    The warm-up is fitted on the CPU (the same for both backends); QAT then
    trains host arrays and draws them with the backend's rasteriser, as
    ``gi compress --backend cuda`` does.
    """
    warm = gi_numba.fit(image, n, iterations=30, seed=0, sigmoid_colours=True)
    phase = qat_phase(warm, iterations, 0.01, version=version)
    rasterizer = make_rasterizer(backend, *image.shape[:2])
    rasterizer.set_target(image.transpose(2, 0, 1))
    state = HostTraining(TrainState.fresh(warm.params.copy(), warm.lam.copy()), rasterizer, image, phase.mapping)
    seen = []
    train(state, phase, np.random.default_rng(0), seen.append, 1)
    return [p.psnr for p in seen]


if __name__ == "__main__":
    # The simulator runs each GPU thread as a Python thread and polls them all from a Python loop;
    # switching the GIL every 0.1 ms instead of 5 ms made one fused training pass on 40x24 take 26 s, not 180 s.
    sys.setswitchinterval(1e-4)
    make_shared_arrays_thread_safe()
    height, width, n = 24, 40, 30
    cases = [compare_kernels(height, width, n, seed) for seed in (0, 1)]
    image = np.random.default_rng(9).uniform(size=(height, width, 3)).astype(np.float32)
    cpu, n_cpu = psnr_trajectory(image, n, FIT_ITERATIONS, "cpu")
    gpu, n_gpu = psnr_trajectory(image, n, FIT_ITERATIONS, "cuda")
    fast = {backend: psnr_trajectory(image, n, FIT_ITERATIONS, backend, "fast")[0] for backend in ("cpu", "cuda")}
    state = compare_growth_and_pruning(3)
    qat = {f"{backend} v{version}": qat_trajectory(image, n, QAT_ITERATIONS, backend, version)
           for backend in ("cpu", "cuda") for version in (1, 2)}
    print(json.dumps(dict(cases=cases, state=state, fit=dict(cpu=cpu, cuda=gpu, n_cpu=n_cpu, n_cuda=n_gpu),
                          fast=fast, qat=qat)))
