"""PSNR and MS-SSIM, checked against values from pytorch_msssim."""

import json
import math

import numpy as np
import pytest

from conftest import KODAK
from gi_numba.image_io import load_image
from gi_numba.metrics import ms_ssim, ms_ssim_defined, psnr

REFERENCE = KODAK / "msssim_reference.json"


def _pairs():
    if not REFERENCE.exists():
        return []
    return json.loads(REFERENCE.read_text())["pairs"]


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/data/msssim_reference.json not present")
@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: p["distorted"])
def test_ms_ssim_and_psnr_match_the_reference_library(pair):
    a, _ = load_image(REFERENCE.parent / pair["reference"])
    b, _ = load_image(REFERENCE.parent / pair["distorted"])
    assert ms_ssim(a, b) == pytest.approx(pair["ms_ssim"], abs=1e-4)
    assert psnr(a, b) == pytest.approx(pair["psnr_rgb"], abs=1e-4)


def test_identical_images():
    image = np.random.default_rng(0).uniform(size=(200, 170, 3))
    assert psnr(image, image) == math.inf
    assert ms_ssim(image, image) == pytest.approx(1.0)


def test_psnr_of_a_known_error():
    a = np.zeros((10, 10, 3))
    assert psnr(a, a + 0.1) == pytest.approx(20.0)


def test_ms_ssim_falls_with_noise():
    rng = np.random.default_rng(1)
    image = rng.uniform(size=(176, 200, 3))
    small = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)
    large = np.clip(image + rng.normal(0, 0.2, image.shape), 0, 1)
    assert 1 > ms_ssim(image, small) > ms_ssim(image, large) > 0


def test_ms_ssim_is_undefined_below_161_pixels():
    assert not ms_ssim_defined(160, 500) and ms_ssim_defined(161, 161)
    assert math.isnan(ms_ssim(np.zeros((100, 300, 3)), np.zeros((100, 300, 3))))
