"""gi-numba: GaussianImage++ image representation and compression, with Numba kernels.

Quick start::

    import gi_numba
    model = gi_numba.fit("photo.png", n_gaussians=5000)
    image = model.render()            # (H, W, 3) float32 in [0, 1]
    model.save("photo.npz")

See ``docs/`` for the algorithm step by step.
"""

from .errors import GIError
from .fit import FitDiverged, Progress, fit
from .image_io import example_image_path, load_image, save_png
from .metrics import ms_ssim, psnr
from .model import GaussianImage

__all__ = ["GIError", "FitDiverged", "GaussianImage", "Progress", "example_image_path", "fit",
           "load_image", "ms_ssim", "psnr", "save_png"]
__version__ = "0.1.0"
