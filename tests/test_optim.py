"""Adam by hand, and the learning-rate schedule."""

import numpy as np
import pytest

from gi_numba.optim import Adam, Adan, step_decay


def test_adam_two_steps_by_hand():
    params = np.array([[1.0, -2.0]], np.float32)
    adam = Adam.zeros_like(params)
    g1 = np.array([[0.5, -0.1]], np.float32)
    g2 = np.array([[0.2, 0.3]], np.float32)
    adam.step(params, g1, lr=0.1)
    adam.step(params, g2, lr=0.1)
    # Hand computation of the PyTorch formulas.
    m = 0.1 * g1
    v = 0.001 * g1 ** 2
    expected = np.array([[1.0, -2.0]]) - 0.1 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-15)
    m = 0.9 * m + 0.1 * g2
    v = 0.999 * v + 0.001 * g2 ** 2
    expected -= 0.1 * (m / (1 - 0.9 ** 2)) / (np.sqrt(v / (1 - 0.999 ** 2)) + 1e-15)
    np.testing.assert_allclose(params, expected, rtol=1e-5)
    np.testing.assert_allclose(adam.m, m, rtol=1e-6)
    np.testing.assert_allclose(adam.v, v, rtol=1e-6)
    assert adam.step_count == 2


def test_first_step_moves_each_parameter_by_the_learning_rate():
    params = np.zeros((3, 8), np.float32)
    grads = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    Adam.zeros_like(params).step(params, grads, lr=0.018)
    np.testing.assert_allclose(params, -0.018 * np.sign(grads), rtol=1e-5)


def test_zero_gradient_leaves_parameters():
    params = np.ones((2, 8), np.float32)
    Adam.zeros_like(params).step(params, np.zeros_like(params), lr=0.5)
    assert np.array_equal(params, np.ones((2, 8), np.float32))


@pytest.mark.parametrize("iteration,expected", [(0, 0.018), (19_999, 0.018), (20_000, 0.009), (49_999, 0.0045)])
def test_step_decay_halves_every_20000(iteration, expected):
    assert step_decay(0.018, iteration, 20_000) == pytest.approx(expected)


def test_adan_two_steps_by_hand():
    """Adan's update, computed in float64 from the formulas in its docstring."""
    params = np.array([[1.0, -2.0, 0.5]], np.float32)
    adan = Adan.zeros_like(params)
    grads = [np.array([[0.5, -0.1, 0.0]]), np.array([[0.2, 0.3, -0.4]])]
    b1, b2, b3, eps, lr = 0.98, 0.92, 0.99, 1e-8, 0.01
    expected, m, d, n, previous = params.astype(np.float64), 0.0, 0.0, 0.0, None
    for t, g in enumerate(grads, start=1):
        adan.step(params, g.astype(np.float32), lr=lr)
        diff = 0.0 if previous is None else g - previous
        m = b1 * m + (1 - b1) * g
        d = b2 * d + (1 - b2) * diff
        n = b3 * n + (1 - b3) * (g + b2 * diff) ** 2
        expected = expected - lr * (m / (1 - b1 ** t) + b2 * d / (1 - b2 ** t)) / (np.sqrt(n / (1 - b3 ** t)) + eps)
        previous = g
    np.testing.assert_allclose(params, expected, rtol=1e-5)
    np.testing.assert_allclose(adan.d, d, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(adan.previous, grads[-1], rtol=1e-7)
    assert adan.step_count == 2


def test_adan_first_step_moves_each_parameter_by_about_the_learning_rate():
    params = np.zeros((3, 8), np.float32)
    grads = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    Adan.zeros_like(params).step(params, grads, lr=0.001)
    np.testing.assert_allclose(params, -0.001 * np.sign(grads), rtol=1e-4)


def test_one_rate_per_column_is_adam_column_by_column():
    """Per-attribute rates: each column moves as plain Adam with its own rate, to the bit."""
    rng = np.random.default_rng(0)
    params = rng.normal(size=(50, 8)).astype(np.float32)
    rates = np.array([0.3, 0.3, 0.02, 0.02, 0.02, 0.1, 0.1, 0.1])
    together, alone = params.copy(), [params[:, [c]].copy() for c in range(8)]
    adam, adams = Adam.zeros_like(together), [Adam.zeros_like(column) for column in alone]
    for _ in range(5):
        grads = rng.normal(size=params.shape).astype(np.float32)
        adam.step(together, grads, rates)
        for c in range(8):
            adams[c].step(alone[c], np.ascontiguousarray(grads[:, [c]]), rates[c])
    assert np.array_equal(together, np.hstack(alone))
