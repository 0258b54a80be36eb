"""The rate term of rate-distortion training: the coder's estimated bits against real bytes, and its gradients."""

import numpy as np
import pytest

from conftest import random_model
from gi_numba import bitstream
from gi_numba.bitstream import FORMATS
from gi_numba.bitstream.models import Stream
from gi_numba.codec import compress, decompress
from gi_numba.coding import ROLES
from gi_numba.encoder import depth_candidates
from gi_numba.quantize import QuantizedGaussians, QuantizedMap, initial_quantizers, quantize
from gi_numba.rate import RateTerm, code_length_slopes
from gi_numba.recipes import recipe_named


def _estimated_and_real_bits(symbols, nbits, version):
    """Each model's estimated bits of its parameters and payload, and their real bits as the writer of
    ``version`` codes them, by model name."""
    stream, fmt = Stream(symbols, nbits), FORMATS[version]
    return ({model.name: model.estimated_bits(stream, fmt.framing) for model in fmt.models},
            {model.name: 8 * sum(map(len, model.encode(stream, fmt.framing))) for model in fmt.models})


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("name", ["laplace", "uniform", "geometric", "narrow"])
def test_each_model_s_estimated_bits_match_the_coded_bytes(name, version):
    rng = np.random.default_rng(1)
    symbols, nbits = {"laplace": (np.clip(np.rint(rng.laplace(30, 4, 3000)), 0, 63), 6),
                      "uniform": (rng.integers(0, 4096, 3000), 12),
                      "geometric": (rng.geometric(0.4, 3000) - 1, 12),
                      "narrow": (np.clip(np.rint(rng.normal(30, 9, 300)), 0, 63), 6)}[name]
    symbols = symbols.astype(np.int64)
    estimated, real = _estimated_and_real_bits(symbols, nbits, version)
    assert estimated["fixed"] == real["fixed"]
    for model in real:
        assert estimated[model] == pytest.approx(real[model], rel=0.02), model


@pytest.mark.parametrize("version", [1, 2, 3])
def test_estimated_file_bits_are_within_three_percent_of_the_real_file(version):
    params, lam = random_model(5, n=400)
    codes = quantize(params, lam, initial_quantizers(params, lam, version=version))
    data, _ = bitstream.write(codes, 64, 96, 3)
    assert bitstream.estimated_file_bits(bitstream.estimated_streams(codes)) == pytest.approx(8 * len(data), rel=0.03)


def test_code_length_slopes_point_away_from_the_most_used_codes():
    """``dL/du`` is negative below a histogram's peak and positive above it: descending the rate moves codes
    toward the peak."""
    codes = np.clip(np.rint(np.random.default_rng(2).laplace(32, 3, 2000)), 0, 63).astype(np.int64)
    slopes = code_length_slopes(codes, 6)
    below, above = (codes >= 24) & (codes < 29), (codes > 35) & (codes <= 40)
    assert (slopes[below] < 0).all() and (slopes[above] > 0).all()


def _rated_pass(lmbda, version=2):
    """Plain and rated QAT gradients of Gaussians whose correlations and first two colour logits are peaked
    (entropy-coded streams) and whose third colour logit is uniform (a fixed-length stream)."""
    params, lam = random_model(6, n=300)
    rng = np.random.default_rng(8)
    params[:, 3] = np.clip(rng.laplace(0, 0.05, 300), -0.9, 0.9) * np.sqrt(params[:, 2] * params[:, 4])
    params[:, 5:7] = rng.laplace(0, 0.3, (300, 2))
    params[:, 7] = rng.uniform(-3, 3, 300)
    plain = QuantizedMap(initial_quantizers(params, lam, version=version))
    rated = QuantizedMap(initial_quantizers(params, lam, version=version), rate=RateTerm(lmbda, 64 * 96))
    drawn, _, result = rated.forward(params, lam)
    grads = np.random.default_rng(7).normal(scale=1e-6, size=drawn.shape).astype(np.float32)
    return rated, result, plain.backward(grads, plain.forward(params, lam)[2]), rated.backward(grads, result)


def test_rate_term_value_and_gradients():
    """The penalty is ``3 lambda`` per estimated bit; the rate pulls entropy-coded values (never positions),
    coarsens the learned steps of entropy-coded streams only, and vanishes with ``lambda``."""
    mapping, result, (plain, plain_own), (rated, rated_own) = _rated_pass(0.01, version=1)
    q = result.quantizers
    data, _ = bitstream.write(QuantizedGaussians(q, *(result.codes[role].astype(np.uint16) for role in ROLES)),
                              64, 96, 3)
    assert mapping.penalty(result) == pytest.approx(3 * 0.01 * 8 * len(data), rel=0.03)
    change = rated - plain
    assert np.abs(change[:, :2]).max() == 0 and np.abs(change[:, 2:]).max() > 0
    models = set()
    for name in ("covariance", "colour"):
        nbits = result.quantizers.bits[name]
        for column, codes in enumerate(result.codes[name].T.astype(np.int64)):
            costs, _ = _estimated_and_real_bits(codes, nbits, q.version)
            models.add(min(costs, key=costs.get))
            difference = rated_own[f"{name}_step"][column] - plain_own[f"{name}_step"][column]
            if min(costs, key=costs.get) == "fixed":
                assert difference == 0, (name, column)
            else:
                assert difference < 0, (name, column)
    assert "fixed" in models and len(models) > 1  # both kinds of stream were checked
    _, _, (plain, _), (tiny, _) = _rated_pass(1e-12)
    assert np.abs(tiny - plain).max() <= 1e-9


def test_larger_lambda_never_gives_a_larger_file(small_crop):
    """On a fixed image and seed, the file shrinks as the rate weighs more (and lambda 0 is plain QAT)."""
    sizes = [len(compress(small_crop, 400, iterations=1000, qat_iterations=300, lmbda=lmbda))
             for lmbda in (0.0, 0.003, 0.03)]  # measured: 2 755, 2 291, 2 002 bytes
    assert sizes[0] > sizes[1] > sizes[2]


def test_the_default_recipe_weighs_the_rate_at_the_warm_up_s_slope_and_the_paper_does_not(small_crop):
    _, fast = compress(small_crop, 100, iterations=300, qat_iterations=50, return_report=True)
    _, paper = compress(small_crop, 100, iterations=300, qat_iterations=50, recipe="paper", return_report=True)
    _, given = compress(small_crop, 100, iterations=300, qat_iterations=50, lmbda=0.002, return_report=True)
    assert fast.lmbda > 0 and paper.lmbda == 0 and given.lmbda == 0.002


def test_an_encode_keeps_the_bit_depths_of_lower_rate_distortion_cost(small_crop):
    """Asked for no depths, the default encoder trains at 12/6/6/6 and at 11/5/6/6 and keeps the lower D + lambda R."""
    lmbda, options = 0.003, dict(iterations=600, qat_iterations=100)
    chosen = compress(small_crop, 150, lmbda=lmbda, **options)
    files = [compress(small_crop, 150, lmbda=lmbda, bits=dict(position=p, variance=v), **options)
             for p, v in ((12, 6), (11, 5))]
    pixels = small_crop.shape[0] * small_crop.shape[1]
    costs = [np.mean((decompress(data) - small_crop) ** 2) + lmbda * 8 * len(data) / pixels for data in files]
    assert files[0] != files[1] and chosen == files[int(np.argmin(costs))]


def test_only_the_default_encoder_chooses_bit_depths_and_only_when_none_are_asked_for():
    assert depth_candidates(recipe_named("paper").encode) == [None]
    assert depth_candidates(recipe_named("fast").encode) == [None, {"position": 11, "variance": 5}]
    assert depth_candidates(recipe_named("fast").encode, {"colour": 7}) == [{"colour": 7}]
