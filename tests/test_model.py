"""The GaussianImage model: checkpoints and rendering at other sizes."""

import json

import numpy as np
import pytest

from conftest import random_gaussians
from gi_numba.errors import GIError
from gi_numba.model import GaussianImage


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    params, _ = random_gaussians(rng, 60, 40, 56, margin=0)
    params[:, 2:5] = np.abs(params[:, 2:5]) % 20 + [2, 0, 2]
    return GaussianImage(params=params, lam=np.full(60, 1.5, np.float32), height=40, width=56, iteration=123,
                         seed=7, settings={"n_gaussians": 60}, psnr=30.5, stats={"seconds": 1.0})


def test_checkpoint_round_trip(tmp_path, model):
    model.save(tmp_path / "m.npz")
    loaded = GaussianImage.load(tmp_path / "m.npz")
    assert np.array_equal(loaded.params, model.params) and np.array_equal(loaded.lam, model.lam)
    assert (loaded.height, loaded.width, loaded.iteration, loaded.seed, loaded.psnr) == (40, 56, 123, 7, 30.5)
    assert loaded.settings == {"n_gaussians": 60} and loaded.stats == {"seconds": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_covariances_include_the_filter(model):
    np.testing.assert_allclose(model.covariances[:, 0], model.params[:, 2] + 1.5, rtol=1e-6)
    np.testing.assert_allclose(model.covariances[:, 1], model.params[:, 3], rtol=1e-6)


def test_render_at_scale_two_is_twice_as_large_and_consistent(model):
    base = model.render()
    double = model.render(scale=2)
    assert base.shape == (40, 56, 3) and double.shape == (80, 112, 3)
    # Pixel (i, j) of the base image is pixel (2i, 2j) of the scaled one: the same point of the scene.
    # They differ only where a Gaussian's 3-sigma tile box clips it differently.
    close = np.abs(double[::2, ::2] - base) < 1e-3
    assert close.mean() > 0.9


def test_render_at_explicit_size(model):
    assert model.render(height=20, width=100).shape == (20, 100, 3)
    with pytest.raises(GIError, match="either a scale"):
        model.render(height=10, scale=2)
    with pytest.raises(GIError, match="positive"):
        model.render(scale=0)


@pytest.mark.parametrize("region", [(0, 0, 56, 40), (5, 3, 20, 30), (17, 16, 39, 1), (40, 33, 16, 7)])
def test_region_is_exactly_that_window_of_the_whole_render(model, region):
    x, y, w, h = region
    assert np.array_equal(model.render(region=region), model.render()[y:y + h, x:x + w])
    big = model.render(scale=2)
    assert np.array_equal(model.render(scale=2, region=(2 * x, 2 * y, w, h)), big[2 * y:2 * y + h, 2 * x:2 * x + w])


@pytest.mark.parametrize("region", [(-1, 0, 5, 5), (0, 0, 0, 5), (50, 0, 7, 5), (0, 36, 5, 5), ("a", 0, 1, 1)])
def test_region_outside_the_image(model, region):
    with pytest.raises(GIError, match="region"):
        model.render(region=region)


def test_loading_something_else(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(GIError, match="not a gi-numba model file"):
        GaussianImage.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", params=np.zeros((1, 8)))
    with pytest.raises(GIError, match="not a gi-numba model file"):
        GaussianImage.load(tmp_path / "other.npz")
    with pytest.raises(GIError, match="no such file"):
        GaussianImage.load(tmp_path / "missing.npz")


def test_future_version_and_bad_shapes(tmp_path, model):
    meta = dict(format="gi-numba-model", version=99, height=4, width=4)
    np.savez(tmp_path / "future.npz", params=np.zeros((1, 8)), lam=np.zeros(1), meta=np.array(json.dumps(meta)))
    with pytest.raises(GIError, match="version 99"):
        GaussianImage.load(tmp_path / "future.npz")
    meta["version"] = 1
    np.savez(tmp_path / "bad.npz", params=np.zeros((2, 7)), lam=np.zeros(2), meta=np.array(json.dumps(meta)))
    with pytest.raises(GIError, match="damaged"):
        GaussianImage.load(tmp_path / "bad.npz")


def test_truncated_checkpoint(tmp_path, model):
    model.save(tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(GIError):
        GaussianImage.load(tmp_path / "cut.npz")
