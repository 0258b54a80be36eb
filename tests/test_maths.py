"""The shared per-Gaussian formulas."""

import math

import numpy as np
import pytest

from gi_numba.raster.maths import (EXP_COEFFS, SIGMA_CUTOFF, conic_of, covariance_grad_from_conic_grad,
                                   eigen_radii, fast_exp, row_range, tile_range)


def test_fast_exp_relative_error_over_the_used_range():
    x = np.linspace(-SIGMA_CUTOFF, 0.0, 20001).astype(np.float32)
    approx = np.array([fast_exp(v) for v in x], np.float64)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(approx / exact - 1)) < 3.5e-6


def test_exp_polynomial_is_near_minimax():
    """The stored float32 coefficients approximate exp on [-ln 255 / 16, 0] to 1.03e-7 relative (in float64)."""
    y = np.linspace(-SIGMA_CUTOFF / 16, 0.0, 100001)
    poly = np.polynomial.polynomial.polyval(y, np.array(EXP_COEFFS, np.float64))
    assert np.max(np.abs(poly / np.exp(y) - 1)) < 1.03e-7


def test_conic_is_the_inverse():
    A, B, C, det = conic_of(4.0, 1.5, 2.0)
    assert det == pytest.approx(4 * 2 - 1.5 ** 2)
    np.testing.assert_allclose(np.array([[A, B], [B, C]]) @ np.array([[4.0, 1.5], [1.5, 2.0]]), np.eye(2), atol=1e-12)


def test_eigen_radii():
    major, minor = eigen_radii(9.0, 4.0, 36.0)   # axis-aligned, eigenvalues 9 and 4
    assert (major, minor) == (9.0, 6.0)
    assert eigen_radii(0.1, 0.1, 0.01)[1] == 0.0  # too thin: minor eigenvalue clamped below 0


def test_tile_range_truncates_toward_zero_and_clamps():
    assert tile_range(20.0, 5.0, 10) == (0, 2)     # (15/16, 25/16 + 1) -> (0, 2)
    assert tile_range(-30.0, 5.0, 10) == (0, 0)    # entirely left of the image
    assert tile_range(150.0, 40.0, 10) == (6, 10)  # clamped at the grid


def test_row_range_bounds_the_ellipse_over_a_column_band():
    """Brute force: every point of the ellipse with x in the band lies within the returned rows."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, c = rng.uniform(0.5, 50, 2)
        b = rng.uniform(-0.95, 0.95) * math.sqrt(a * c)
        mx, my = rng.uniform(-20, 20, 2)
        xa = rng.uniform(-30, 30)
        xb = xa + rng.uniform(0, 15)
        det = a * c - b * b
        ex, tx = math.sqrt(2 * SIGMA_CUTOFF * a), b * math.sqrt(2 * SIGMA_CUTOFF / c)
        y_lo, y_hi = row_range(mx, my, b / a, det / a ** 2, ex, tx, xa, xb)
        A, B, C = c / det, -b / det, a / det
        xs, ys = np.meshgrid(np.linspace(xa, xb, 60), np.linspace(my - 40, my + 40, 801))
        dx, dy = mx - xs, my - ys
        inside = 0.5 * (A * dx * dx + C * dy * dy) + B * dx * dy <= SIGMA_CUTOFF
        if y_lo > y_hi:
            assert not inside.any()
        else:
            assert ys[inside].min() >= y_lo - 1e-9 and ys[inside].max() <= y_hi + 1e-9
            assert ys[inside].min() <= y_lo + 0.2 and ys[inside].max() >= y_hi - 0.2


def test_covariance_gradient_is_the_chain_rule_through_the_inverse():
    rng = np.random.default_rng(1)
    cov = np.array([5.0, 1.2, 3.0])
    g_conic = rng.normal(size=3)

    def loss(a, b, c):
        A, B, C, _ = conic_of(a, b, c)
        return g_conic @ np.array([A, B, C])

    A, B, C, _ = conic_of(*cov)
    analytic = covariance_grad_from_conic_grad(A, B, C, *g_conic)
    h = 1e-6
    numeric = [(loss(*(cov + h * e)) - loss(*(cov - h * e))) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)
