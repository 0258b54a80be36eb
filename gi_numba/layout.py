"""Column layout of the parameter array (docs/algorithm.md §1).

All trainable numbers of ``N`` Gaussians live in one ``(N, 8)`` float32 array,
one row per Gaussian, so the optimiser, growth and pruning treat a Gaussian as
a single row and its Adam moments can never fall out of step with it.
"""

import numpy as np

#: Number of trainable numbers per Gaussian.
N_PARAMS = 8

#: Columns of the mean ``(x, y)`` in pixel units.
MEAN = slice(0, 2)
#: Columns of the covariance ``(a, b, c) = (var_x, cov_xy, var_y)`` before the CAF filter.
COV = slice(2, 5)
#: Columns of the colour ``(r, g, b)``.
COLOUR = slice(5, 8)
#: Columns of the variances ``(a, c)``; in a covariance triple ``(a, b, c)`` they are :data:`TRIPLE_VARIANCES`.
VARIANCES = [2, 4]
TRIPLE_VARIANCES = [0, 2]
#: Column of the covariance term ``b`` (a slice, so it stays a column); in a triple, :data:`TRIPLE_COV_XY`.
COV_XY = slice(3, 4)
TRIPLE_COV_XY = slice(1, 2)


def filtered_covariances(params, lam) -> np.ndarray:
    """``(N, 3)`` float64 covariances with the CAF filter added, ``S' = S + lam I`` (docs/algorithm.md §1)."""
    cov = params[:, COV].astype(np.float64)
    for column in TRIPLE_VARIANCES:
        cov[:, column] += lam
    return cov
