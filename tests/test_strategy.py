"""Densification: initialisation, growth, pruning, and moments that follow their Gaussians."""

import math
from functools import partial

import numpy as np

from gi_numba.maps import SIGMOID_START_RANGE, IdentityMap, SigmoidColourMap
from gi_numba.optim import Adan
from gi_numba.parameterisation import Cholesky
from gi_numba.strategy import (DensifyStrategy, PruneStrategy, Strategy, TrainState, add_gaussians,
                               remove_gaussians)
from gi_numba.strategy.densify import (MIN_START_VARIANCE, gradient_sampled_means, largest_error_pixels,
                                      neighbour_variances, squared_gradient)
from gi_numba.strategy.ops import prune_non_positive_definite


def _state(n):
    params = np.arange(n * 8, dtype=np.float32).reshape(n, 8)
    state = TrainState.fresh(params, np.arange(n, dtype=np.float32))
    state.optimizer.m[:] = params + 1000
    state.optimizer.v[:] = params + 2000
    return state


def test_remove_takes_the_moments_along():
    state = _state(5)
    remove_gaussians(state, np.array([False, True, False, True, False]))
    assert list(state.params[:, 0]) == [0, 16, 32]
    assert list(state.lam) == [0, 2, 4]
    assert np.array_equal(state.optimizer.m, state.params + 1000)
    assert np.array_equal(state.optimizer.v, state.params + 2000)


def test_add_starts_new_moments_at_zero():
    state = _state(2)
    add_gaussians(state, np.full((3, 8), 7, np.float32), np.full(3, 9, np.float32))
    assert state.n_gaussians == 5 and list(state.lam) == [0, 1, 9, 9, 9]
    assert not state.optimizer.m[2:].any() and not state.optimizer.v[2:].any()
    assert np.array_equal(state.optimizer.m[:2], state.params[:2] + 1000)


def test_sparse_initialisation():
    strategy = DensifyStrategy(1000, 60, 80)
    state = strategy.initial_state(np.random.default_rng(0))
    assert state.n_gaussians == 500
    assert state.lam[0] == np.float32(60 * 80 / (9 * math.pi * 500))
    assert (state.params[:, 0] >= 0).all() and (state.params[:, 0] <= 80).all()
    assert (state.params[:, 2:5] >= 0).all() and (state.params[:, 2:5] <= 1).all() and not state.params[:, 5:].any()


def _edge_image(height=40, width=60, column=30):
    image = np.zeros((height, width, 3), np.float32)
    image[:, column:] = 1.0
    return image


def test_squared_gradient_is_central_differences_summed_over_channels():
    image = _edge_image()
    gradient = squared_gradient(image)
    assert np.allclose(gradient[:, 29], 3 * 0.5 ** 2) and np.allclose(gradient[:, 30], 3 * 0.5 ** 2)
    assert not gradient[:, :29].any() and not gradient[:, 31:].any()
    assert squared_gradient(np.ones((1, 5, 3)) * np.arange(5)[None, :, None])[0, 2] == 3.0  # one row: x only


def test_gradient_share_of_the_initial_means_lies_on_the_edges_the_rest_uniform():
    means = gradient_sampled_means(_edge_image(), 1000, 0.7, np.random.default_rng(0))
    assert means.shape == (1000, 2)
    on_edge = np.abs(means[:700, 0] - 29.5) <= 1.0
    assert on_edge.all() and (means[:, 1] >= -0.5).all() and (means[:, 1] <= 40).all()
    spread = means[700:]
    assert (spread[:, 0] >= 0).all() and (spread[:, 0] <= 60).all() and np.abs(spread[:, 0] - 29.5).mean() > 10


def test_a_flat_image_or_no_share_gives_uniform_means_as_the_paper():
    for image, share in ((np.full((40, 60, 3), 0.3, np.float32), 0.7), (_edge_image(), 0.0)):
        means = gradient_sampled_means(image, 500, share, np.random.default_rng(1))
        assert np.abs(means[:, 0] - 29.5).mean() > 10 and (means >= 0).all()


def test_neighbour_variances_on_a_grid():
    """A unit grid: the 4 nearest neighbours of an inner point are at distance 1, of a corner at 1, 1, sqrt 2, 2."""
    ys, xs = np.mgrid[0:5, 0:5]
    means = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    variance = neighbour_variances(means, 4, 0.5).reshape(5, 5)
    assert variance[2, 2] == 0.5 and variance[0, 0] == 0.5 * (1 + 1 + 2 + 4) / 4
    assert neighbour_variances(means[:1], 4, 0.5).tolist() == [0.5]  # alone: §5's mean variance
    assert neighbour_variances(np.zeros((3, 2)), 4, 0.5).tolist() == [MIN_START_VARIANCE] * 3  # never degenerate


def test_the_strategy_starts_by_the_target_only_when_asked():
    image = _edge_image()
    plain = DensifyStrategy(1000, 40, 60).initial_state(np.random.default_rng(0), image)
    placed = DensifyStrategy(1000, 40, 60, content_aware=True).initial_state(np.random.default_rng(0), image)
    assert np.array_equal(plain.params, DensifyStrategy(1000, 40, 60).initial_state(np.random.default_rng(0)).params)
    assert (np.abs(placed.params[:350, 0] - 29.5) <= 1.0).all()  # 70% of the 500 on the edge
    filtered = placed.params[:, 2:5] + placed.lam[:, None] * np.array([1, 0, 1])
    assert (filtered[:, 1] == 0).all() and np.allclose(filtered[:, 0], filtered[:, 2])  # round
    assert np.median(filtered[:350, 0]) < 0.25 * np.median(filtered[350:, 0])  # small on the edge, large elsewhere
    assert np.array_equal(placed.lam, plain.lam) and not placed.params[:, 5:].any()  # filters and colours as §5


def test_filter_is_capped_and_off_without_caf():
    assert DensifyStrategy(2, 1000, 1000).filter_variance(1) == 300.0
    assert DensifyStrategy(10, 60, 80, caf=False).filter_variance(10) == 0.0


def test_the_null_strategy_starts_with_all_gaussians_and_changes_none():
    strategy = Strategy(100, 30, 30)
    state = strategy.initial_state(np.random.default_rng(0))
    memory = strategy.fresh_memory(state.n_gaussians)
    assert state.n_gaussians == 100
    state.params[0, 3] = 1e6  # not positive definite: would be pruned with densification
    assert not any(strategy.after_step(state, i, None, np.random.default_rng(0), memory) for i in range(1, 1001))
    assert state.n_gaussians == 100


def test_the_prune_strategy_prunes_on_schedule_and_never_grows():
    strategy = PruneStrategy(100, 30, 30, prune_every=50)
    state = strategy.initial_state(np.random.default_rng(0))
    memory = strategy.fresh_memory(state.n_gaussians)
    state.params[:, 2:5] = (2.0, 0.0, 2.0)
    state.params[0, 3] = 1e6
    rng = np.random.default_rng(0)  # no largest_errors: growth would call it
    assert not strategy.after_step(state, 49, None, rng, memory)
    assert state.n_gaussians == 100
    assert strategy.after_step(state, 50, None, rng, memory)
    assert state.n_gaussians == 99
    assert not any(strategy.after_step(state, i, None, rng, memory) for i in range(51, 1001))


def test_growth_interval_scales_with_iterations():
    assert DensifyStrategy(10, 30, 30).grow_every == 5000
    assert DensifyStrategy(10, 30, 30, iterations=3000).grow_every == 300


def test_largest_error_pixels():
    target = np.zeros((4, 5, 3), np.float32)
    render = target.copy()
    render[1, 3] = 0.9
    render[2, 0, 0] = 0.5
    render[0, 4, 1:] = 0.2
    ys, xs = largest_error_pixels(render, target, 2)
    assert list(zip(ys, xs)) == [(1, 3), (2, 0)]
    render[3, :, :] = 0.9  # five ties with the largest error: the first by pixel index win, also at the k-th place
    for k in (1, 2, 3, 6):
        ys, xs = largest_error_pixels(render, target, k)
        assert list(zip(ys, xs)) == [(1, 3), (3, 0), (3, 1), (3, 2), (3, 3), (3, 4)][:k]


def test_growth_places_new_gaussians_at_the_worst_pixels_with_a_smaller_filter():
    height, width = 20, 30
    strategy = DensifyStrategy(60, height, width, iterations=1000)
    state = strategy.initial_state(np.random.default_rng(0))
    n0, lam0 = state.n_gaussians, state.lam[0]
    target = np.zeros((height, width, 3), np.float32)
    render = np.linspace(0, 1, height * width, dtype=np.float32).reshape(height, width, 1).repeat(3, 2)
    assert strategy.grow(state, 100, partial(largest_error_pixels, render, target), np.random.default_rng(1))
    added = state.n_gaussians - n0
    assert 20 < added <= 30  # the 30 worst pixels, less any drawn covariance that is not positive definite
    flat = state.params[n0:, 1].astype(int) * width + state.params[n0:, 0].astype(int)
    assert np.all(np.diff(flat) < 0) and flat.min() >= height * width - 30
    assert not state.params[n0:, 5:].any()
    assert np.all(state.lam[n0:] == np.float32(height * width / (9 * math.pi * state.n_gaussians)))
    assert state.lam[n0] < lam0
    cov = state.params[n0:, 2:5]
    assert (cov[:, 0] * cov[:, 2] - cov[:, 1] ** 2 > 0).all()
    assert not state.optimizer.m[n0:].any()


def test_last_growth_fills_the_budget():
    strategy = DensifyStrategy(300, 20, 30, iterations=1000, grow_batch=10)
    state = strategy.initial_state(np.random.default_rng(0))
    target = np.zeros((20, 30, 3), np.float32)
    render = np.random.default_rng(2).uniform(size=(20, 30, 3)).astype(np.float32)
    strategy.grow(state, 500, partial(largest_error_pixels, render, target), np.random.default_rng(3))
    assert state.n_gaussians <= 160
    strategy.grow(state, 900, partial(largest_error_pixels, render, target), np.random.default_rng(3))
    assert 280 < state.n_gaussians <= 300  # a few dropped for not being positive definite


def test_after_step_prunes_on_schedule_and_grows_when_due():
    strategy = DensifyStrategy(60, 60, 80, iterations=1000, prune_every=100, grow_every=200)
    state = strategy.initial_state(np.random.default_rng(0))  # filter 5.7: all positive definite
    memory = strategy.fresh_memory(state.n_gaussians)
    state.params[0, 3] = 1e6
    target = np.zeros((60, 80, 3), np.float32)
    assert not strategy.after_step(state, 150, None, np.random.default_rng(0), memory)
    assert strategy.after_step(state, 100, None, np.random.default_rng(0), memory)
    assert state.n_gaussians == 29 and not strategy.grows_at(100)
    assert strategy.grows_at(200) and not strategy.grows_at(1000)
    strategy.after_step(state, 200, partial(largest_error_pixels, target + 0.5, target), np.random.default_rng(0),
                        memory)
    assert state.n_gaussians > 29


def test_pruning_removes_only_non_positive_definite():
    state = _state(4)
    state.params[:, 2:5] = [[1, 0, 1], [1, 2, 1], [-5, 0, 1], [2, 1, 2]]
    state.lam[:] = 0.5
    assert prune_non_positive_definite(state)
    assert state.params[:, 2:5].tolist() == [[1, 0, 1], [2, 1, 2]]
    assert state.optimizer.m.shape == (2, 8)


def test_pruning_never_removes_everything():
    state = _state(2)
    state.params[:, 2:5] = [[-1, 0, 1], [1, 5, 1]]
    state.lam[:] = 0
    assert not prune_non_positive_definite(state)
    assert state.n_gaussians == 2


def test_adan_state_follows_its_gaussians():
    """All four Adan arrays are removed and added with their rows, like Adam's two moments."""
    params = np.arange(4 * 8, dtype=np.float32).reshape(4, 8)
    state = TrainState.fresh(params, np.zeros(4, np.float32), Adan)
    for offset, name in enumerate(Adan.ROW_STATE):
        getattr(state.optimizer, name)[:] = params + 1000 * (offset + 1)
    remove_gaussians(state, np.array([True, False, False, True]))
    add_gaussians(state, np.ones((2, 8), np.float32), np.zeros(2, np.float32))
    for offset, name in enumerate(Adan.ROW_STATE):
        array = getattr(state.optimizer, name)
        assert np.array_equal(array[:2], state.params[:2] + 1000 * (offset + 1))
        assert array.shape == (4, 8) and not array[2:].any()


def test_baseline_strategy_prunes_by_the_drawn_covariance_and_grows_in_its_parameters():
    model = Cholesky()
    strategy = DensifyStrategy(40, 32, 48, iterations=100, caf=False, parameterisation=model)
    state = strategy.initial_state(np.random.default_rng(0))
    assert isinstance(state.optimizer, Adan) and state.n_gaussians == 20
    state.params[3, 2:5] = [-0.5, 0.0, 0.2]  # l1 = 0: singular L L^T, not positive definite
    assert state.prune_non_positive_definite() and state.n_gaussians == 19
    errors = partial(lambda k: (np.arange(k) % 32, np.arange(k) % 48))
    assert strategy.grow(state, 90, errors, np.random.default_rng(1))
    drawn = model.draw(state.params, 32, 48)
    assert state.n_gaussians == 40
    np.testing.assert_allclose(drawn[19:, 0], np.arange(21) % 48, atol=1e-3)


def _host_training(height, width, strategy, mapping, target):
    from gi_numba.raster.cpu_pipeline import CpuRasterizer
    from gi_numba.training import HostTraining
    rasterizer = CpuRasterizer(height, width)
    rasterizer.set_target(target.transpose(2, 0, 1))
    return HostTraining(strategy.initial_state(np.random.default_rng(0)), rasterizer, target, mapping)


def test_residual_growth_starts_new_gaussians_at_what_the_render_lacks():
    height, width = 20, 30
    target = np.random.default_rng(4).uniform(0.2, 0.8, (height, width, 3)).astype(np.float32)
    for mapping, drawn_colour in ((IdentityMap(), lambda c: c),
                                  (SigmoidColourMap(), lambda c: 1.0 / (1.0 + np.exp(-c.astype(np.float64))))):
        strategy = DensifyStrategy(60, height, width, iterations=1000, residual_colours=True)
        training = _host_training(height, width, strategy, mapping, target)
        drawn, lam, _ = mapping.forward(training.state.params, training.state.lam)
        render = training.rasterizer.render(drawn, lam).transpose(1, 2, 0)
        n0 = training.n_gaussians
        assert strategy.grow(training, 100, training.largest_errors, np.random.default_rng(1))
        new = training.state.params[n0:]
        xs, ys = new[:, 0].astype(int), new[:, 1].astype(int)
        lacking = np.clip(target[ys, xs] - render[ys, xs], *SIGMOID_START_RANGE) if isinstance(
            mapping, SigmoidColourMap) else target[ys, xs] - render[ys, xs]
        assert np.abs(lacking).min() > 0.01
        np.testing.assert_allclose(drawn_colour(new[:, 5:]), lacking, rtol=1e-5, atol=1e-6)


def test_sigmoid_map_starts_colours_at_their_clipped_logits():
    colours = np.array([[0.5, 0.0, 1.0], [0.25, -3.0, 0.99]], np.float32)
    logits = SigmoidColourMap().trained_colours(colours)
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-logits.astype(np.float64))),
                               np.clip(colours, 0.01, 0.99), rtol=1e-6)
    assert np.array_equal(IdentityMap().trained_colours(colours), colours)


def test_refill_grows_back_what_pruning_took_until_its_iteration_and_without_it_nothing_does():
    target = np.zeros((60, 80, 3), np.float32)
    errors = partial(largest_error_pixels, target + np.linspace(0, 1, 80, dtype=np.float32)[:, None], target)
    for refill_until, expected in ((None, 28), (450, 30)):
        strategy = DensifyStrategy(60, 60, 80, iterations=1000, prune_every=100, grow_every=200,
                                   refill_until=refill_until)
        state = strategy.initial_state(np.random.default_rng(0))  # filter 5.7: all positive definite
        memory = strategy.fresh_memory(state.n_gaussians)
        state.params[:2, 3] = 1e6
        assert strategy.refills_at(300) == (refill_until is not None) and not strategy.refills_at(200)
        strategy.after_step(state, 100, errors, np.random.default_rng(0), memory)
        assert state.n_gaussians == expected
        if refill_until is not None:
            assert (state.params[-2:, 0] > 78).all()  # at the largest errors: the right-hand columns
            strategy.after_step(state, 200, errors, np.random.default_rng(0), memory)  # growth: the new count is kept
            grown = state.n_gaussians
            assert grown > 30 and memory["refill_target"] == grown
            state.params[:2, 3] = 1e6
            strategy.after_step(state, 300, errors, np.random.default_rng(0), memory)
            assert state.n_gaussians == grown
            state.params[:3, 3] = 1e6
            strategy.after_step(state, 500, errors, np.random.default_rng(0), memory)  # past refill_until: pruned only
            assert state.n_gaussians == grown - 3


def test_one_strategy_object_runs_two_fits_alike_and_is_not_changed_by_them(small_crop):
    """What a strategy remembers between steps lives in the run's memory (:meth:`fresh_memory`), not in it."""
    from gi_numba.optim import Constant
    from gi_numba.training import Phase, train
    strategy = DensifyStrategy(80, 64, 96, iterations=400, prune_every=50, grow_every=100, refill_until=350,
                               residual_colours=True)
    before = dict(vars(strategy))  # every field a number, a flag or the shared parameterisation
    phase = Phase("fit", 400, 0.05, Constant(), strategy)
    runs = [train(_host_training(64, 96, strategy, IdentityMap(), small_crop), phase, np.random.default_rng(0))
            for _ in range(2)]
    assert vars(strategy) == before
    assert np.array_equal(runs[0].params, runs[1].params) and runs[0].params.shape[0] > 40
