"""Training recipes and stopping rules: the paper's schedule kept, the default faster, each rule stops where it says."""

import math

import numpy as np
import pytest

import gi_numba
from gi_numba.codec import compress
from gi_numba.encoder import encode_settings
from gi_numba.rate_control import pilot_options
from gi_numba.errors import GIError
from gi_numba.fit import FitSettings, fit_target, representation_phase
from gi_numba.optim import CosineDecay, StepDecay
from gi_numba.recipes import FAST, PAPER, recipe_named
from gi_numba.training import StopRule


def test_the_paper_recipe_is_the_papers_schedule():
    """docs/algorithm.md §4-§5: 50 000 iterations, lr 0.018 halved at 20 000 and 40 000, growth every 5 000."""
    settings = FitSettings(5000, recipe="paper")
    phase = representation_phase(settings, 512, 768)
    assert settings.iterations == 50_000 and phase.lr == 0.018
    assert phase.schedule == StepDecay(20_000)
    assert [phase.lr_at(i) for i in (1, 20_000, 20_001, 40_001)] == [0.018, 0.018, 0.009, 0.0045]
    assert phase.strategy.grow_every == 5000 and phase.strategy.growth_until == 50_000
    assert phase.strategy.refill_until is None  # what pruning takes stays gone until the next growth step
    assert not phase.strategy.content_aware  # §5's uniform start
    assert phase.stop == StopRule(after=45_000, min_gain=PAPER.fit.min_gain)


def test_the_default_recipe_is_fast_for_gi_plus_plus_and_paper_for_the_baselines():
    assert FitSettings(100).recipe == "fast"
    assert FitSettings(100, model="gi-cholesky").recipe == "paper"
    with pytest.raises(GIError, match="tuned for gi"):
        FitSettings(100, model="gi-rs", recipe="fast")
    with pytest.raises(GIError, match="unknown recipe 'slow'"):
        FitSettings(100, recipe="slow")


def test_the_fast_recipe_has_one_rate_per_attribute():
    settings = FitSettings(5000)
    phase = representation_phase(settings, 512, 768)
    assert settings.iterations == FAST.fit.iterations
    position, covariance, colour = (FAST.fit.lr * scale for scale in FAST.fit.lr_scale)
    assert np.array_equal(phase.lr_at(1), [position] * 2 + [covariance] * 3 + [colour] * 3)
    assert np.array_equal(phase.lr_at(FAST.fit.iterations), phase.lr_at(1) / 4)  # halved twice, as the paper
    assert phase.stop.plateau == 1_000 and phase.stop.after == 20_000 - 2_000
    assert phase.strategy.refill_until == 19_000  # pruned Gaussians grown back until 95% of the iterations
    warm_up = representation_phase(FitSettings(5000, sigmoid_colours=True), 512, 768)
    assert warm_up.strategy.refill_until is None  # not in an encode's warm-up (it cost 3% BD-rate)
    assert phase.strategy.content_aware and not warm_up.strategy.content_aware  # a start shaped by the image
    logit = FAST.encode.warmup.lr * FAST.encode.warmup.lr_scale[2]  # colours as logits move at their own rate
    assert np.array_equal(warm_up.lr_at(1), [position] * 2 + [covariance] * 3 + [logit] * 3)
    assert colour < logit


def test_the_fast_rates_follow_the_pixels_per_gaussian():
    """Positions move in pixels, covariances in pixels²: twice the Gaussians, rates / sqrt(2) and / 2."""
    at = {n: representation_phase(FitSettings(n), 512, 768).lr_at(1) for n in (5000, 10_000, 1000)}
    position, covariance, colour = (FAST.fit.lr * scale for scale in FAST.fit.lr_scale)
    assert FAST.fit.reference_area == FAST.encode.warmup.reference_area == 512 * 768 / 5000
    np.testing.assert_allclose(at[10_000], [position / math.sqrt(2)] * 2 + [covariance / 2] * 3 + [colour] * 3)
    assert np.array_equal(at[1000], at[5000])  # never faster than measured
    assert PAPER.fit.learning_rates(0.018, 1.0) == 0.018


def test_denser_fits_run_longer():
    """Fewer pixels per Gaussian than Kodak's 79: iterations x sqrt(79 / A), at most x1.5; never an encode."""
    kodak = 768 * 512
    assert FitSettings(10_000, pixels=kodak).iterations == round(20_000 * math.sqrt(2)) == 28_284
    assert FitSettings(5000, pixels=kodak).iterations == FitSettings(500, pixels=kodak).iterations == 20_000
    assert FitSettings(2000, pixels=256 * 176).iterations == 30_000  # the bundled photo: capped
    assert FitSettings(10_000).iterations == 20_000  # image unknown
    assert FitSettings(10_000, pixels=kodak, sigmoid_colours=True).iterations == 20_000  # an encode's warm-up
    assert FitSettings(10_000, pixels=kodak, recipe="paper").iterations == 50_000
    assert FitSettings(10_000, 700, pixels=kodak).iterations == 700  # asked for, as asked


def test_cosine_decay():
    decay = CosineDecay(101, 0.1)
    assert decay(2.0, 1) == 2.0
    assert decay(2.0, 51) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    assert decay(2.0, 101) == pytest.approx(0.2)
    assert decay(2.0, 500) == pytest.approx(0.2)  # past the end it stays at the floor


def test_stop_rule_reasons():
    history = [10.0 + 0.001 * i for i in range(100)]
    assert StopRule().reason(100, 30.0, 1e9, history) is None
    assert StopRule(seconds=5).reason(3, 20.0, 5.0, history[:3]) == "time"
    assert StopRule(seconds=5).reason(3, 20.0, 4.9, history[:3]) is None
    assert StopRule(psnr=25).reason(3, 25.0, 0.0, history[:3]) == "psnr"
    assert StopRule(psnr=25).reason(3, 24.99, 0.0, history[:3]) is None
    flat = StopRule(plateau=10, min_gain=0.02)
    assert flat.reason(100, 0.0, 0.0, history) == "converged"          # 0.01 dB over the last 10 iterations
    assert StopRule(plateau=10, min_gain=0.005).reason(100, 0.0, 0.0, history) is None
    assert StopRule(plateau=10, min_gain=0.02, after=90).reason(100, 0.0, 0.0, history) is None  # window 91-100
    assert StopRule(plateau=10, min_gain=0.02, after=89).reason(100, 0.0, 0.0, history) == "converged"


def test_a_psnr_target_stops_the_fit_once_reached(small_crop):
    model = gi_numba.fit(small_crop, 200, iterations=3000, psnr=22.0, seed=0)
    assert model.stats["stopped"] == "psnr" and not model.stats["interrupted"]
    assert 22.0 <= model.psnr < 24 and model.stats["iterations_run"] < 3000


def test_a_time_budget_stops_the_fit(small_crop):
    gi_numba.fit(small_crop, 50, iterations=20, seed=0)  # compile outside the budget
    model = gi_numba.fit(small_crop, 200, iterations=1_000_000, seconds=1.0, seed=0)
    assert model.stats["stopped"] == "time" and not model.stats["interrupted"]
    assert 1.0 <= model.stats["seconds"] < 10 and model.stats["iterations_run"] < 1_000_000


def test_the_default_fit_stops_once_converged(small_crop):
    """20 000 iterations for 30 Gaussians: converged before the end (measured: stops at 19 001)."""
    model = gi_numba.fit(small_crop, 30, iterations=20_000, seed=0)
    assert model.stats["stopped"] == "converged"
    assert 18_000 + 1_000 < model.stats["iterations_run"] < 20_000  # a whole window after the last growth


def test_the_default_recipe_beats_the_paper_at_the_same_short_budget(parrots):
    """The bundled photo, 2 000 Gaussians, 3 000 iterations: measured fast 40.35 dB, paper 33.79 dB."""
    fast = gi_numba.fit(parrots, 2000, iterations=3000, seed=0)
    paper = gi_numba.fit(parrots, 2000, iterations=3000, seed=0, recipe="paper")
    assert fast.settings["recipe"] == "fast" and paper.settings["recipe"] == "paper"
    assert fast.psnr > 40.0
    assert fast.psnr > paper.psnr + 6.0
    assert math.isclose(gi_numba.psnr(fast.render(), parrots), fast.psnr, abs_tol=1e-3)


def test_recipe_lookup():
    assert recipe_named("paper") is PAPER and recipe_named(FAST) is FAST
    with pytest.raises(GIError, match="unknown initialisation 'random'"):
        FAST.with_fit(init="random")
    with pytest.raises(GIError, match="unknown colour map 'rgb'"):
        FAST.with_warmup(colours="rgb")


def test_the_default_encode_warm_up_grows_gaussians_that_stay(parrots):
    """Compression warm-up (colours as logits), 1 000 Gaussians, 2 000 iterations of the default recipe.

    Grown at logit 0 (mid-grey), most new Gaussians collapse and are pruned;
    grown at the colour the render lacks, they stay. Measured: 606 kept,
    29.21 dB against 997 kept, 33.56 dB.
    """
    fits = {start: fit_target(parrots, 3, FitSettings(1000, iterations=2000, sigmoid_colours=True,
                                                      recipe=FAST.with_warmup(grow_colour=start)))
            for start in ("zero", "residual")}
    assert FAST.encode.warmup.residual_colours and not FAST.fit.residual_colours
    assert not PAPER.encode.warmup.residual_colours
    assert fits["residual"].n_gaussians > 950 > 700 > fits["zero"].n_gaussians
    assert fits["residual"].psnr > fits["zero"].psnr + 3.0


def test_the_default_recipe_fits_and_encodes_for_20000_iterations():
    """Longer fits pay: +0.18 dB on six Kodak images at 5 000 Gaussians, -8.1% BD-rate for an encode."""
    assert FitSettings(5000).iterations == 20_000 == FAST.fit.iterations == FAST.encode.warmup.iterations
    warm, qat = encode_settings(5000)
    assert (warm.iterations, qat) == (18_000, 2_000)
    assert pilot_options({})["iterations"] == 2_000  # a --bpp pilot: a tenth of an encode, two RDO sweeps
    assert pilot_options({})["recipe"].encode.rdo_sweeps == 2 and FAST.encode.rdo_sweeps == 16
    assert pilot_options({"recipe": "paper"})["recipe"].encode.rdo_sweeps == 0
    assert FitSettings(5000, recipe="paper").iterations == FitSettings(5000, recipe="paper",
                                                                       sigmoid_colours=True).iterations == 50_000
    assert encode_settings(5000, iterations=3000)[0].iterations == 2_700  # asked for, as asked


def test_an_encode_is_one_schedule_with_the_default_recipe_and_two_with_the_papers():
    fast, paper = FAST.encode, PAPER.encode
    assert fast.encode_phases(12_000) == (10_800, 1_200)
    assert fast.encode_phases(12_000, 500) == (11_500, 500) and fast.encode_phases(12_000, 0) == (12_000, 0)
    assert paper.encode_phases(50_000) == (50_000, 10_000) and paper.encode_phases(50_000, 7) == (50_000, 7)
    with pytest.raises(GIError, match="leave none of the 300"):
        fast.encode_phases(300, 300)


def test_a_default_encode_spends_its_iterations_in_one_pass(small_crop):
    """The warm-up and QAT phases of a 300-iteration encode run 270 and 30 iterations (QAT once per depth choice),
    RDO after them."""
    seen = {}

    def record(p):
        seen[p.phase] = (p.iteration, p.iterations)

    compress(small_crop, 40, iterations=300, progress=record, progress_every=10)
    assert seen.pop("RDO")[1] == 16  # then RDO's sweeps, up to sixteen
    assert seen == {"warm-up": (270, 270), "QAT (12/6/6/6 bits)": (30, 30), "QAT (11/5/6/6 bits)": (30, 30)}
    seen.clear()
    compress(small_crop, 40, iterations=300, recipe="paper", progress=record, progress_every=10)
    assert seen == {"warm-up": (300, 300), "QAT": (60, 60)}
