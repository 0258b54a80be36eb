"""Rasterisation backends (docs/algorithm.md §2-§3).

Three plain steps, each in its own module: :mod:`.project` (conic and tile
box of every Gaussian), :mod:`.binning` (per-tile Gaussian lists) and the
backend's tile kernels (:mod:`.cpu`, or :mod:`.cuda` for NVIDIA GPUs, which
does all three steps on the device). :mod:`.reference` is the slow dense
NumPy renderer the kernels are tested against; :mod:`.maths` holds the
formulas all of them share; :mod:`.window` renders a window of an image.

Both backends' rasterisers (:class:`~.cpu_pipeline.CpuRasterizer`,
:class:`~.cuda_pipeline.CudaRasterizer`) are a :class:`Rasterizer`, on host arrays.
Inside, both run the same three steps with twin functions of the same
names: projection, binning into tile lists (:class:`~.binning.TileLists` on
the host, :class:`~.cuda_binning.DeviceTiles` on the device, each passed
whole to the kernels), then ``render_forward``, ``render_loss_backward`` and
``reduce_gradients`` (:mod:`.cpu`, :mod:`.cuda`), whose per-pixel formulas
are :mod:`.maths`'s. The CUDA rasteriser also works on device arrays
(``*_on_device``), which the GPU's training state (:mod:`gi_numba.gpu_train`) uses.
"""

from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import GIError
from .cpu_pipeline import CpuRasterizer

BACKENDS = ("auto", "cpu", "cuda")


@runtime_checkable
class Rasterizer(Protocol):
    """What every backend's rasteriser offers, on host arrays, for a ``height x width`` canvas.

    ``n_values`` is ``3 H W`` (what the loss sums); ``trains_on_device`` says
    whether it can hold a whole training state on its device
    (:func:`gi_numba.training.training_state`).
    """

    name: str
    height: int
    width: int
    n_values: int
    trains_on_device: bool

    def render(self, params: np.ndarray, lam: np.ndarray, out=None) -> np.ndarray:
        """The clamped ``[3, H, W]`` float32 image that ``params [N, 8]`` with filters ``lam [N]`` draw."""

    def set_target(self, target: np.ndarray) -> None:
        """Set the ``[3, H, W]`` image the loss compares with."""

    def loss_and_gradients(self, params: np.ndarray, lam: np.ndarray) -> tuple:
        """``(sum of squared errors, dL/dparams [N, 8])`` of the MSE against the target."""


def cuda_available() -> bool:
    """Whether the CUDA backend can run: ``numba-cuda`` installed and a GPU (or its simulator) present."""
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:  # no numba-cuda, or a driver that cannot be loaded
        return False


def resolve_backend(backend) -> str:
    """The backend ``backend`` names: ``auto`` is ``cuda`` when a GPU can be used, else ``cpu``."""
    if backend not in BACKENDS:
        raise GIError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "cuda" if cuda_available() else "cpu"
    if backend == "cuda" and not cuda_available():
        raise GIError("the cuda backend needs an NVIDIA GPU with its driver and the numba-cuda package "
                      "(pip install 'gi-numba[cuda]'); use --backend cpu")
    return backend


def make_rasterizer(backend, height, width) -> Rasterizer:
    """A rasteriser for an ``height x width`` canvas on the named backend."""
    if resolve_backend(backend) == "cuda":
        from .cuda_pipeline import CudaRasterizer
        return CudaRasterizer(height, width)
    return CpuRasterizer(height, width)
