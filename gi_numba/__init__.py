"""gi-numba: GaussianImage++ image representation and compression, with Numba kernels.

Quick start::

    import gi_numba
    model = gi_numba.fit("photo.png", n_gaussians=5000)
    image = model.render()            # (H, W, 3) float32 in [0, 1]
    model.save("photo.npz")

``.gi`` files open in imageio as soon as this package is imported
(``imageio.v3.imread("photo.gi")``), and in Pillow after
:func:`register_pillow`. See ``docs/`` for the algorithm step by step.
"""

from .display import show_gaussians
from .errors import GIError
from .fit import FitDiverged, Progress, fit
from .image_io import example_image_path, load_image, save_png
from .imageio_plugin import register_imageio
from .metrics import ms_ssim, psnr
from .model import GaussianImage


def register_pillow() -> None:
    """Let Pillow open and save ``.gi`` files (:mod:`gi_numba.pillow_plugin`; imports Pillow)."""
    from .pillow_plugin import register_pillow as register
    register()


register_imageio()

__all__ = ["GIError", "FitDiverged", "GaussianImage", "Progress", "example_image_path", "fit",
           "load_image", "ms_ssim", "psnr", "register_imageio", "register_pillow", "save_png", "show_gaussians"]
__version__ = "0.1.0"
