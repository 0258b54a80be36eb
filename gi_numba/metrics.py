"""Image quality: PSNR and MS-SSIM, as the paper measures them.

Both take ``(H, W, C)`` float images in ``[0, 1]`` (data range 1).
MS-SSIM follows ``pytorch_msssim.ms_ssim(X, Y, data_range=1)`` exactly:
Gaussian window of 11 taps with sigma 1.5 applied separably as a *valid*
convolution, ``K = (0.01, 0.03)``, 5 scales with weights
``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``, 2x2 average pooling with zero
padding of odd sides (counted in the average), contrast-structure terms
clipped at 0 (ReLU), and the per-channel products averaged over channels.
"""

import numpy as np

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WINDOW_SIZE = 11
_WINDOW_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03


def mse(a, b) -> float:
    """Mean squared error over all values."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(np.mean(diff * diff))


def psnr(a, b) -> float:
    """PSNR in dB with data range 1, MSE over all values (``inf`` for equal images)."""
    return psnr_from_mse(mse(a, b))


def psnr_from_mse(value) -> float:
    """``10 log10(1 / mse)``."""
    return float("inf") if value <= 0 else float(10.0 * np.log10(1.0 / value))


def ms_ssim_defined(height, width) -> bool:
    """MS-SSIM needs the smaller side above 160 px (four halvings of an 11-tap window)."""
    return min(height, width) > (_WINDOW_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1)


def ms_ssim(a, b) -> float:
    """MS-SSIM of two ``(H, W, C)`` images, or ``nan`` when the image is too small."""
    x = np.moveaxis(np.asarray(a, np.float64), -1, 0)
    y = np.moveaxis(np.asarray(b, np.float64), -1, 0)
    if not ms_ssim_defined(*x.shape[1:]):
        return float("nan")
    window = _gaussian_window()
    factors = []
    for level, weight in enumerate(MS_SSIM_WEIGHTS):
        ssim, cs = _ssim_and_cs(x, y, window)
        last = level == len(MS_SSIM_WEIGHTS) - 1
        factors.append(np.maximum(ssim if last else cs, 0.0) ** weight)
        if not last:
            x, y = _average_pool(x), _average_pool(y)
    return float(np.mean(np.prod(factors, axis=0)))


def _gaussian_window():
    coords = np.arange(_WINDOW_SIZE, dtype=np.float64) - _WINDOW_SIZE // 2
    g = np.exp(-(coords ** 2) / (2 * _WINDOW_SIGMA ** 2))
    return g / g.sum()


def _filter(image, window):
    """Separable valid convolution of ``(C, H, W)`` with the 1-D window along H and W."""
    n = window.size
    h = sum(window[k] * image[:, k:image.shape[1] - n + 1 + k, :] for k in range(n))
    return sum(window[k] * h[:, :, k:h.shape[2] - n + 1 + k] for k in range(n))


def _ssim_and_cs(x, y, window):
    """Per-channel mean SSIM and contrast-structure term."""
    c1, c2 = _K1 ** 2, _K2 ** 2
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    var_x = _filter(x * x, window) - mu_x ** 2
    var_y = _filter(y * y, window) - mu_y ** 2
    cov = _filter(x * y, window) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1) * cs_map
    return ssim_map.mean(axis=(1, 2)), cs_map.mean(axis=(1, 2))


def _average_pool(image):
    """2x2 average pooling, zero-padding odd sides by one on each end (pads count)."""
    pad_h, pad_w = image.shape[1] % 2, image.shape[2] % 2
    image = np.pad(image, ((0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    h, w = image.shape[1] // 2 * 2, image.shape[2] // 2 * 2
    image = image[:, :h, :w]
    return 0.25 * (image[:, 0::2, 0::2] + image[:, 1::2, 0::2] + image[:, 0::2, 1::2] + image[:, 1::2, 1::2])
