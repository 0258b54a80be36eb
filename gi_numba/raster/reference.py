"""Dense NumPy reference rasteriser, float64 (docs/algorithm.md §2-§3). Tests only.

Slow and obviously correct: every Gaussian is evaluated at every pixel with
``np.exp``, then the tile-box rule decides which terms count. No spans, no
fast exp, no binning: the fast kernels are tested against this file, and this
file's gradients are tested against finite differences.
"""

import numpy as np

from .maths import SIGMA_CUTOFF, TILE


def reference_projection(params, lam, height, width):
    """Per-Gaussian conic ``(A, B, C)`` and tile box, or ``None`` if not rendered."""
    grid_x, grid_y = -(-width // TILE), -(-height // TILE)
    out = []
    for (x, y, a, b, c), f in zip(np.asarray(params, np.float64)[:, :5], np.asarray(lam, np.float64)):
        a, c = a + f, c + f
        det = a * c - b * b
        if det <= 0:
            out.append(None)
            continue
        m = 0.5 * (a + c)
        root = np.sqrt(max(0.1, m * m - det))
        major = np.ceil(3 * np.sqrt(m + root))
        if m - root <= 0 or np.ceil(3 * np.sqrt(m - root)) < 1:
            out.append(None)
            continue
        tx = [int(np.clip(int((x - major) / TILE), 0, grid_x)), int(np.clip(int((x + major) / TILE + 1), 0, grid_x))]
        ty = [int(np.clip(int((y - major) / TILE), 0, grid_y)), int(np.clip(int((y + major) / TILE + 1), 0, grid_y))]
        if tx[0] >= tx[1] or ty[0] >= ty[1]:
            out.append(None)
            continue
        out.append(((c / det, -b / det, a / det), (tx[0], tx[1], ty[0], ty[1])))
    return out


def reference_alpha_maps(params, lam, height, width):
    """Yield ``(g, alpha (H, W), dx, dy, conic)`` for every rendered Gaussian."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    tile_x, tile_y = xs.astype(int) // TILE, ys.astype(int) // TILE
    p = np.asarray(params, np.float64)
    for g, proj in enumerate(reference_projection(params, lam, height, width)):
        if proj is None:
            continue
        (A, B, C), (tx0, tx1, ty0, ty1) = proj
        dx, dy = p[g, 0] - xs, p[g, 1] - ys
        sigma = 0.5 * (A * dx * dx + C * dy * dy) + B * dx * dy
        listed = (tile_x >= tx0) & (tile_x < tx1) & (tile_y >= ty0) & (tile_y < ty1)
        counted = listed & (sigma >= 0) & (sigma <= SIGMA_CUTOFF)
        alpha = np.where(counted, np.exp(-np.where(counted, sigma, 0.0)), 0.0)
        yield g, alpha, dx, dy, (A, B, C)


def reference_render(params, lam, height, width) -> np.ndarray:
    """Unclamped sum ``out(p) = sum_g col_g alpha_g(p)`` as ``(3, H, W)`` float64."""
    out = np.zeros((3, height, width))
    p = np.asarray(params, np.float64)
    for g, alpha, _, _, _ in reference_alpha_maps(params, lam, height, width):
        out += p[g, 5:8, None, None] * alpha
    return out


def reference_loss(params, lam, target) -> float:
    """MSE between ``clamp(out, 0, 1)`` and the ``(3, H, W)`` target."""
    out = reference_render(params, lam, target.shape[1], target.shape[2])
    return np.mean((np.clip(out, 0.0, 1.0) - target) ** 2)


def reference_gradients(params, lam, target) -> np.ndarray:
    """Analytic ``dL/dparams`` ``(N, 8)`` of :func:`reference_loss`, float64."""
    height, width = target.shape[1], target.shape[2]
    p = np.asarray(params, np.float64)
    out = reference_render(params, lam, height, width)
    grad_out = np.where((out >= 0) & (out <= 1), 2.0 * (np.clip(out, 0, 1) - target) / target.size, 0.0)
    grads = np.zeros_like(p)
    for g, alpha, dx, dy, (A, B, C) in reference_alpha_maps(params, lam, height, width):
        grads[g, 5:8] = (grad_out * alpha).sum(axis=(1, 2))
        dsigma = -alpha * np.einsum("c,chw->hw", p[g, 5:8], grad_out)
        grads[g, 0] = (dsigma * (A * dx + B * dy)).sum()
        grads[g, 1] = (dsigma * (B * dx + C * dy)).sum()
        g_conic = np.array([(dsigma * 0.5 * dx * dx).sum(), (dsigma * dx * dy).sum(), (dsigma * 0.5 * dy * dy).sum()])
        Q = np.array([[A, B], [B, C]])
        G = np.array([[g_conic[0], g_conic[1] / 2], [g_conic[1] / 2, g_conic[2]]])
        d_cov = -Q @ G @ Q
        grads[g, 2:5] = d_cov[0, 0], 2 * d_cov[0, 1], d_cov[1, 1]
    return grads
