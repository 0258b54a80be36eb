"""Shared fixtures: small images that need nothing outside the repository."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from gi_numba.image_io import example_image_path, load_image

#: The Kodak benchmark images, beside the repository (CI has them; users may not).
KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def parrots():
    """The bundled 256x176 photo as float32 (H, W, 3)."""
    return load_image(example_image_path())[0]


@pytest.fixture(scope="session")
def small_crop(parrots):
    """A 96x64 crop of the bundled photo (an eye, feathers and background)."""
    return np.ascontiguousarray(parrots[40:104, 130:226])


@pytest.fixture
def crop_png(tmp_path, small_crop):
    """The 96x64 crop as an 8-bit PNG file."""
    path = tmp_path / "crop.png"
    iio.imwrite(path, np.rint(small_crop * 255).astype(np.uint8))
    return path


def random_model(seed=0, n=300, height=64, width=96):
    """Parameters and filters of ``n`` ordinary Gaussians inside the image (positive definite, colour logits)."""
    rng = np.random.default_rng(seed)
    params = np.zeros((n, 8), np.float32)
    params[:, 0], params[:, 1] = rng.uniform(0, width, n), rng.uniform(0, height, n)
    params[:, 2], params[:, 4] = rng.uniform(0.5, 30, n), rng.uniform(0.5, 30, n)
    params[:, 3] = rng.uniform(-0.9, 0.9, n) * np.sqrt(params[:, 2] * params[:, 4])
    params[:, 5:8] = rng.normal(0, 2, (n, 3))
    return params, np.full(n, 1.0, np.float32)


def random_gaussians(rng, n, height, width, margin=8.0):
    """Random parameters and filters covering the cases the rasteriser must handle.

    Means reach past the borders; covariances mix tiny (often not rendered),
    ordinary, elongated and huge ones, plus some that are not positive definite.
    """
    params = np.zeros((n, 8), np.float32)
    params[:, 0] = rng.uniform(-margin, width + margin, n)
    params[:, 1] = rng.uniform(-margin, height + margin, n)
    kind = rng.integers(0, 5, n)
    scale = np.choose(kind, [0.05, 3.0, 20.0, 400.0, 3.0])
    a = scale * rng.uniform(0.2, 1.5, n)
    c = scale * rng.uniform(0.2, 1.5, n)
    corr = np.where(kind == 4, rng.uniform(1.05, 1.5, n), rng.uniform(-0.95, 0.95, n))
    params[:, 2], params[:, 3], params[:, 4] = a, corr * np.sqrt(a * c), c
    params[:, 5:8] = rng.normal(0.3, 0.4, (n, 3))
    lam = rng.choice([0.0, 0.5, 2.0], n).astype(np.float32)
    return params, lam
