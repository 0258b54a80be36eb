"""GaussianImage's parameterisations: drawn values, chain rule against finite differences, new Gaussians."""

import numpy as np
import pytest

from gi_numba.errors import GIError
from gi_numba.parameterisation import DIRECT, MODELS, Cholesky, RotationScale, parameterisation, positive_definite

H, W = 48, 80


def _raw(model, n=12, seed=0):
    return model.initial(np.random.default_rng(seed), n, H, W)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_backward_matches_finite_differences(name):
    """d(sum(drawn * weights))/d(trained), by central differences in float64 on the float64 maps."""
    model = MODELS[name]
    rng = np.random.default_rng(1)
    raw = _raw(model).astype(np.float64)
    raw[:, 2:5] += rng.normal(0, 0.3, (raw.shape[0], 3))  # away from the initial values, signs mixed
    weights = rng.normal(size=raw.shape)

    def objective(values):
        drawn = values.copy()
        drawn[:, 2:5] = model.covariance(values).astype(np.float64) if model is DIRECT else _cov64(model, values)
        if model is not DIRECT:
            drawn[:, 0] = 0.5 * W * (np.tanh(values[:, 0]) + 1)
            drawn[:, 1] = 0.5 * H * (np.tanh(values[:, 1]) + 1)
        return float((drawn * weights).sum())

    analytic = model.backward(raw.astype(np.float32), weights.astype(np.float32), H, W).astype(np.float64)
    numeric = np.zeros_like(raw)
    step = 1e-6
    for index in np.ndindex(raw.shape):
        up, down = raw.copy(), raw.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (objective(up) - objective(down)) / (2 * step)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-4, atol=2e-4 * np.abs(numeric).max())


def _cov64(model, raw):
    """The model's covariance formula evaluated in float64 (``covariance`` itself returns float32)."""
    if isinstance(model, Cholesky):
        l1, l2, l3 = (raw[:, 2:5] + [0.5, 0.0, 0.5]).T
        return np.stack([l1 * l1, l1 * l2, l2 * l2 + l3 * l3], axis=1)
    u, w, theta, _ = RotationScale._factors(raw[:, 2:5])
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([c * c * u + s * s * w, c * s * (u - w), s * s * u + c * c * w], axis=1)


def test_draw_matches_float64_formulas():
    for model in (Cholesky(), RotationScale()):
        raw = _raw(model)
        np.testing.assert_allclose(model.covariance(raw), _cov64(model, raw.astype(np.float64)), rtol=1e-6)


def test_rotation_scale_has_the_squared_scales_as_eigenvalues():
    model = RotationScale()
    raw = _raw(model)
    cov = model.covariance(raw).astype(np.float64)
    matrices = np.stack([np.stack([cov[:, 0], cov[:, 1]], 1), np.stack([cov[:, 1], cov[:, 2]], 1)], 1)
    eig = np.sort(np.linalg.eigvalsh(matrices), axis=1)
    scales = np.sort(np.abs(raw[:, 2:4].astype(np.float64) + 0.5) ** 2, axis=1)
    np.testing.assert_allclose(eig, scales, rtol=1e-5)


def test_direct_draws_its_trained_numbers():
    raw = _raw(DIRECT)
    grads = np.random.default_rng(2).normal(size=raw.shape).astype(np.float32)
    assert np.array_equal(DIRECT.draw(raw, H, W), raw)
    assert np.array_equal(DIRECT.backward(raw, grads, H, W), grads)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_grown_gaussians_sit_on_their_pixels_with_zero_colour(name):
    model = MODELS[name]
    xs, ys = np.array([0, 5, W - 1]), np.array([H - 1, 7, 0])
    rows = model.at_pixels(xs, ys, np.random.default_rng(0), H, W)
    drawn = model.draw(rows, H, W)
    np.testing.assert_allclose(drawn[:, 0], xs, atol=1e-3)
    np.testing.assert_allclose(drawn[:, 1], ys, atol=1e-3)
    assert not drawn[:, 5:8].any()
    assert positive_definite(model.covariance(rows)).all()


def test_gaussianimage_initialisation_covers_the_image():
    model = Cholesky()
    drawn = model.draw(model.initial(np.random.default_rng(0), 4000, H, W), H, W)
    assert 0 <= drawn[:, 0].min() < 1 and W - 1 < drawn[:, 0].max() <= W
    assert 0 <= drawn[:, 1].min() < 1 and H - 1 < drawn[:, 1].max() <= H
    assert 0.45 < drawn[:, 5:8].mean() < 0.55  # colours U(0, 1)
    assert positive_definite(model.covariance(model.initial(np.random.default_rng(1), 500, H, W))).all()


def test_unknown_model_is_a_user_error():
    with pytest.raises(GIError, match="unknown model"):
        parameterisation("gi-quaternion")
