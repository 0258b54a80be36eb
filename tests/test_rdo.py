"""Rate-distortion optimised quantisation: its distortion and rate bookkeeping against recomputation, and the files."""

import numpy as np
import pytest

from conftest import random_model
from gi_numba import bitstream
from gi_numba.codec import compress, decompress, model_of_codes
from gi_numba.interrupt import request
from gi_numba.model import GaussianImage
from gi_numba.quantize import dequantize
from gi_numba.rdo import _move_bits, _patch, _patch_change, _removal_bits, optimise_codes, rendered_sum
from gi_numba.recipes import FAST, PAPER


def _drawn(seed=0, n=120, height=64, width=96):
    """Render-ready float64 parameters (filter folded in, colours in [0, 1]) of random Gaussians."""
    params, lam = random_model(seed, n, height, width)
    params = params.astype(np.float64)
    params[:, 2] += lam
    params[:, 4] += lam
    params[:, 5:8] = 1.0 / (1.0 + np.exp(-params[:, 5:8]))
    return params


def _squared_error(params, image):
    """The squared error summed over the image of the clamped running sum of ``params``."""
    drawn = np.clip(rendered_sum(params, *image.shape[:2]), 0.0, 1.0)
    return float(np.sum((drawn - image) ** 2))


def test_the_running_sum_is_what_the_decoder_draws():
    params = _drawn()
    model = GaussianImage(params=params.astype(np.float32), lam=np.zeros(len(params), np.float32), height=64,
                          width=96, channels=3)
    drawn = np.clip(rendered_sum(params, 64, 96), 0.0, 1.0)
    assert np.abs(drawn - model.render()).max() < 2e-5  # the decoder's polynomial exp: 3.5e-6 per term


@pytest.mark.parametrize("removed", [False, True])
def test_a_moves_distortion_change_is_the_recomputed_one(removed):
    """Moving (or removing) one Gaussian changes the squared error by exactly what a fresh render says."""
    rng = np.random.default_rng(1)
    params = _drawn(seed=1)
    image = rng.uniform(0, 1, (64, 96, 3))
    total = rendered_sum(params, 64, 96)
    for g in rng.choice(len(params), 10, replace=False):
        new = params[g] + np.array([1.3, -0.7, 2.0, 0.5, -1.0, 0.1, -0.2, 0.05])
        moved = params.copy()
        if removed:
            moved = np.delete(moved, g, axis=0)
        else:
            moved[g] = new
        expected = _squared_error(moved, image) - _squared_error(params, image)
        new_patch = (0, 0, 0, 0, np.zeros((0, 0))) if removed else _patch(new, 64, 96)
        change = _patch_change(params[g], _patch(params[g], 64, 96), new, new_patch, image, total)
        assert change == pytest.approx(expected, abs=1e-9)


def test_stream_bit_changes_are_those_of_the_empirical_code_length():
    """``n log2 n - sum c log2 c`` before and after: a symbol moved from one code to another, or removed."""
    def length(counts):
        counts = counts[counts > 0].astype(np.float64)
        return counts.sum() * np.log2(counts.sum()) - np.sum(counts * np.log2(counts))

    counts = np.array([5, 1, 0, 9, 3], np.int64)
    for old, new in ((0, 1), (1, 2), (3, 0), (4, 3)):
        after = counts.copy()
        after[old] -= 1
        after[new] += 1
        assert _move_bits(counts, old, new) == pytest.approx(length(after) - length(counts))
        after = counts.copy()
        after[old] -= 1
        assert _removal_bits(counts, old, counts.sum()) == pytest.approx(length(after) - length(counts))


def test_optimised_codes_make_a_file_of_lower_rate_distortion_cost(small_crop):
    """From a real encode's codes: a file that is cheaper for ``D + lambda R`` and decodes bit-exactly."""
    data = compress(small_crop, 200, iterations=1500, qat_iterations=300, lmbda=0.003, recipe="paper")
    codes = bitstream.read(data).codes
    pixels = small_crop.shape[0] * small_crop.shape[1]

    def cost(file):
        return np.mean((decompress(file) - small_crop) ** 2) + 0.003 * 8 * len(file) / pixels

    better = optimise_codes(codes, small_crop, 0.003, 4)
    written, _ = bitstream.write(better, 64, 96, 3)
    assert cost(written) < cost(data)
    assert better.n_gaussians <= codes.n_gaussians
    assert np.array_equal(decompress(written), model_of_codes(bitstream.read(written).codes, 64, 96).render())
    unmoved = optimise_codes(codes, small_crop, 0.003, 0)
    assert np.array_equal(dequantize(unmoved), dequantize(codes.sorted_by_position()))
    assert np.array_equal(dequantize(bitstream.read(data).codes), dequantize(codes))  # the input is not changed


def test_the_default_encoder_writes_the_optimised_codes_of_its_plain_file(small_crop):
    """An encode is its file without RDOQ, then the recipe's sweeps at its scale of the lambda its QAT trained
    with."""
    options = dict(iterations=600, qat_iterations=100)
    plain, report = compress(small_crop, 150, recipe=FAST.with_encode(rdo_sweeps=0), return_report=True, **options)
    optimised = optimise_codes(bitstream.read(plain).codes, small_crop, FAST.encode.rdo_lambda_scale * report.lmbda,
                               FAST.encode.rdo_sweeps)
    assert compress(small_crop, 150, **options) == bitstream.write(optimised, 64, 96, 3)[0] != plain
    assert (FAST.encode.rdo_sweeps, FAST.encode.rdo_lambda_scale, PAPER.encode.rdo_sweeps) == (16, 1.5, 0)


def test_rdo_shows_its_sweeps_and_ctrl_c_ends_them_with_a_valid_file(small_crop):
    """Each sweep reports progress; a stop request during the first ends RDO there, the file kept and marked."""
    seen = []

    def stop_in_rdo(p):
        seen.append((p.phase, p.iteration, p.iterations))
        if p.phase == "RDO":
            request()

    options = dict(iterations=600, qat_iterations=100, bits=dict(position=12, variance=6))
    data, report = compress(small_crop, 150, progress=stop_in_rdo, return_report=True, **options)
    assert [s for s in seen if s[0] == "RDO"] == [("RDO", 1, FAST.encode.rdo_sweeps)] and report.interrupted
    plain, plain_report = compress(small_crop, 150, recipe=FAST.with_encode(rdo_sweeps=0), return_report=True,
                                   **options)
    scale = FAST.encode.rdo_lambda_scale
    one_sweep = optimise_codes(bitstream.read(plain).codes, small_crop, scale * plain_report.lmbda, 1)
    assert data == bitstream.write(one_sweep, 64, 96, 3)[0]
