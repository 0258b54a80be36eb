"""Reading rate-distortion curves: quality at a given rate, and the Bjøntegaard delta rate.

A curve is a set of ``(bpp, quality)`` points of one method on one image
(or averaged over images). Both functions interpolate with monotone cubic
(PCHIP) pieces, as current BD-rate tools do, rather than Bjøntegaard's
original single cubic polynomial, which can swing between sparse points.
"""

import math

import numpy as np
from scipy.interpolate import PchipInterpolator


def _increasing(x, y):
    """The points sorted by ``x``, keeping the first of equal ``x``, as float arrays."""
    order = np.argsort(x, kind="stable")
    x, y = np.asarray(x, np.float64)[order], np.asarray(y, np.float64)[order]
    keep = np.concatenate([[True], np.diff(x) > 0])[:x.size]
    return x[keep], y[keep]


def quality_at_rate(bpp, quality, rate):
    """Quality interpolated at ``rate`` bpp (in log-rate); NaN outside the measured rates or if one is NaN."""
    log_rate, quality = _increasing(np.log(bpp), quality)
    if log_rate.size < 2 or not np.isfinite(quality).all() or not log_rate[0] <= math.log(rate) <= log_rate[-1]:
        return math.nan
    return float(PchipInterpolator(log_rate, quality)(math.log(rate)))


def bd_rate(anchor_bpp, anchor_quality, test_bpp, test_quality):
    """Average rate difference (percent) of ``test`` against ``anchor`` at equal quality.

    Negative: ``test`` needs fewer bits. Log-rate is interpolated as a
    function of quality on each curve and integrated over the quality range
    both curves cover; NaN when the ranges do not overlap.
    """
    q_a, r_a = _increasing(anchor_quality, np.log(anchor_bpp))
    q_t, r_t = _increasing(test_quality, np.log(test_bpp))
    if q_a.size < 2 or q_t.size < 2:
        return math.nan
    low, high = max(q_a[0], q_t[0]), min(q_a[-1], q_t[-1])
    if not high > low or not np.isfinite([low, high]).all():
        return math.nan
    integral_a = PchipInterpolator(q_a, r_a).integrate(low, high)
    integral_t = PchipInterpolator(q_t, r_t).integrate(low, high)
    return 100.0 * (math.exp((integral_t - integral_a) / (high - low)) - 1.0)
