"""The fast CPU kernels against the dense NumPy reference, and the reference against finite differences."""

import numba
import numpy as np
import pytest

from conftest import random_gaussians, random_model
from gi_numba.raster.binning import balanced_parts, bin_gaussians, counting_sort
from gi_numba.raster.cpu_pipeline import CpuRasterizer
from gi_numba.raster.project import project_gaussians, tile_grid
from gi_numba.raster.maths import TILE, TILE_ROWS, kernel_grid_rows, tile_run
from gi_numba.raster.reference import (reference_alpha_maps, reference_gradients, reference_loss,
                                       reference_projection, reference_render)

SIZES = [(37, 45), (16, 16), (50, 33), (7, 70), (64, 96)]


def _case(seed, height, width, n=40):
    rng = np.random.default_rng(seed)
    params, lam = random_gaussians(rng, n, height, width)
    target = rng.uniform(0, 1, (3, height, width)).astype(np.float32)
    return params, lam, target


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_matches_reference(seed, height, width):
    params, lam, _ = _case(seed, height, width)
    fast = CpuRasterizer(height, width).render(params, lam)
    ref = np.clip(reference_render(params, lam, height, width), 0, 1)
    np.testing.assert_allclose(fast, ref, atol=2e-5, rtol=0)


@pytest.mark.parametrize("height,width", SIZES)
def test_render_into_a_channel_last_image_has_the_planar_bits(height, width):
    params, lam, _ = _case(3, height, width)
    rasterizer = CpuRasterizer(height, width)
    planar = rasterizer.render(params, lam)
    channel_last = np.full((height, width, 3), np.nan, np.float32)
    rasterizer.render(params, lam, out=channel_last.transpose(2, 0, 1))
    np.testing.assert_array_equal(channel_last, planar.transpose(1, 2, 0))


def test_cases_cover_skipped_and_huge_gaussians():
    """The random cases really contain Gaussians that must be skipped and ones that span many tiles."""
    params, lam, _ = _case(0, 64, 96, n=200)
    projected = reference_projection(params, lam, 64, 96)
    skipped = sum(p is None for p in projected)
    widest = max((p[1][1] - p[1][0]) * (p[1][3] - p[1][2]) for p in projected if p is not None)
    non_pd = ((params[:, 2] + lam) * (params[:, 4] + lam) - params[:, 3] ** 2 <= 0).sum()
    assert skipped > 10 and non_pd > 5 and widest >= 20


def test_projection_matches_reference():
    params, lam, _ = _case(3, 50, 70, n=300)
    gx, gy = tile_grid(50, 70)
    conic, box, _ = project_gaussians(params, lam, gx, gy)
    for g, ref in enumerate(reference_projection(params, lam, 50, 70)):
        if ref is None:
            assert not box[g].any()
        else:
            assert tuple(box[g]) == ref[1]
            np.testing.assert_allclose(conic[g], ref[0], rtol=1e-5)


def test_tile_lists_hold_the_box_tiles_the_ellipse_reaches():
    """A kernel tile lists exactly the Gaussians whose box overlaps it and whose ellipse reaches it inside the box,
    in index order, each with the rows of the tile its ellipse reaches there."""
    params, lam, _ = _case(4, 50, 70, n=300)
    gx, gy = tile_grid(50, 70)
    _, box, ellipse = project_gaussians(params, lam, gx, gy)
    tile_start, entry_gaussian, entry_slot, entry_rows, gaussian_start = bin_gaussians(params, box, ellipse, gx, gy)
    assert len(tile_start) == gx * kernel_grid_rows(gy) + 1 and TILE_ROWS % TILE == 0
    stacked = TILE_ROWS // TILE  # culling-tile rows per kernel tile row
    missed = 0
    for t in range(gx * kernel_grid_rows(gy)):
        tx, ty = t % gx, t // gx
        in_box = [g for g in range(len(box)) if box[g, 0] <= tx < box[g, 1]
                  and box[g, 2] < (ty + 1) * stacked and ty * stacked < box[g, 3]]
        runs = {g: tile_run(float(params[g, 0]), float(params[g, 1]), *(float(v) for v in ellipse[g]),
                            box[g, 2], box[g, 3], tx * TILE, ty * TILE_ROWS) for g in in_box}
        reached = [g for g in in_box if runs[g][1] > 0]
        missed += len(in_box) - len(reached)
        assert list(entry_gaussian[tile_start[t]:tile_start[t + 1]]) == reached
        rows = [(runs[g][0] // TILE, (runs[g][0] + runs[g][1]) // TILE) for g in reached]
        assert [tuple(r) for r in entry_rows[tile_start[t]:tile_start[t + 1]]] == rows
    assert missed > 0.1 * len(entry_gaussian)  # boxes hold many tiles their ellipse misses
    assert sorted(entry_slot) == list(range(len(entry_slot)))
    for g in range(len(box)):
        slots = [s for s, gg in zip(entry_slot, entry_gaussian) if gg == g]
        assert sorted(slots) == list(range(gaussian_start[g], gaussian_start[g + 1]))


def test_every_reference_term_lies_in_a_listed_tile():
    """The dense reference's counted pixels of each Gaussian fall in tiles that list it."""
    params, lam, _ = _case(6, 50, 70, n=300)
    gx, gy = tile_grid(50, 70)
    _, box, ellipse = project_gaussians(params, lam, gx, gy)
    tile_start, entry_gaussian, _, _, _ = bin_gaussians(params, box, ellipse, gx, gy)
    listed = {(int(t), int(g)) for t in range(len(tile_start) - 1)
              for g in entry_gaussian[tile_start[t]:tile_start[t + 1]]}
    for g, alpha, _, _, _ in reference_alpha_maps(params, lam, 50, 70):
        ys, xs = np.nonzero(alpha)
        assert {(int(t), g) for t in (ys // TILE_ROWS) * gx + xs // TILE} <= listed


@pytest.mark.parametrize("n_parts", [1, 2, 3, 7, 400])
def test_tile_lists_do_not_depend_on_the_split(n_parts):
    """The parallel counting sort gives the same arrays however the Gaussians are split."""
    params, lam, _ = _case(4, 50, 70, n=300)
    gx, gy = tile_grid(50, 70)
    _, box, ellipse = project_gaussians(params, lam, gx, gy)
    expected = bin_gaussians(params, box, ellipse, gx, gy)
    for got, want in zip(counting_sort(params, box, ellipse, gx, gy, n_parts), expected):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("n_parts", [1, 2, 3, 7])
def test_binning_parts_share_the_work(n_parts):
    """Each thread's range of Gaussians holds about its share of box columns plus box tiles."""
    params, lam, _ = _case(5, 50, 70, n=300)
    params[150:, 2:5] *= 0.05                       # later Gaussians small, as growth makes them
    gx, gy = tile_grid(50, 70)
    _, box, _ = project_gaussians(params, lam, gx, gy)
    widths = (box[:, 1] - box[:, 0]).astype(np.int64)
    column_start = np.concatenate([[0], np.cumsum(widths)])
    work = widths + widths * (box[:, 3] - box[:, 2])
    parts = balanced_parts(box, column_start, n_parts)
    assert parts[0] == 0 and parts[-1] == len(params) and np.all(np.diff(parts) >= 0)
    shares = [work[parts[p]:parts[p + 1]].sum() for p in range(n_parts)]
    assert max(shares) <= work.sum() / n_parts + work.max()


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("seed", [0, 1])
def test_loss_and_gradients_match_reference(seed, height, width):
    params, lam, target = _case(seed, height, width)
    rasterizer = CpuRasterizer(height, width)
    rasterizer.set_target(target)
    sse, grads = rasterizer.loss_and_gradients(params, lam)
    ref_loss = reference_loss(params, lam, target.astype(np.float64))
    assert sse / target.size == pytest.approx(ref_loss, rel=1e-5)
    ref = reference_gradients(params, lam, target.astype(np.float64))
    scale = np.abs(ref).max(axis=0) + 1e-12
    assert np.all(np.abs(grads - ref) <= 2e-4 * scale)


def test_reference_gradients_match_finite_differences():
    """Central differences in float64 on a tiny case, every attribute of every Gaussian."""
    height, width = 20, 23
    rng = np.random.default_rng(7)
    params = np.zeros((6, 8))
    params[:, 0], params[:, 1] = rng.uniform(2, width - 2, 6), rng.uniform(2, height - 2, 6)
    params[:, 2], params[:, 4] = rng.uniform(3, 12, 6), rng.uniform(3, 12, 6)
    params[:, 3] = rng.uniform(-0.5, 0.5, 6) * np.sqrt(params[:, 2] * params[:, 4])
    params[:, 5:8] = rng.uniform(0.1, 0.4, (6, 3))
    lam = np.full(6, 0.5)
    target = rng.uniform(0, 1, (3, height, width))
    analytic = reference_gradients(params, lam, target)
    h = 1e-6
    numeric = np.zeros_like(params)
    for g in range(params.shape[0]):
        for i in range(8):
            up, down = params.copy(), params.copy()
            up[g, i] += h
            down[g, i] -= h
            numeric[g, i] = (reference_loss(up, lam, target) - reference_loss(down, lam, target)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-10)


def test_fast_gradients_match_finite_differences():
    """The float32 kernels directly against float64 central differences of the reference loss."""
    params, lam, target = _case(11, 30, 41, n=25)
    rasterizer = CpuRasterizer(30, 41)
    rasterizer.set_target(target)
    _, grads = rasterizer.loss_and_gradients(params, lam)
    p64, t64, h = params.astype(np.float64), target.astype(np.float64), 1e-5
    rng = np.random.default_rng(0)
    rendered = [g for g, p in enumerate(reference_projection(params, lam, 30, 41)) if p is not None]
    for g in rng.choice(rendered, 8, replace=False):
        for i in range(8):
            up, down = p64.copy(), p64.copy()
            up[g, i] += h
            down[g, i] -= h
            numeric = (reference_loss(up, lam, t64) - reference_loss(down, lam, t64)) / (2 * h)
            assert grads[g, i] == pytest.approx(numeric, rel=2e-3, abs=1e-9)


def test_same_bits_on_one_and_two_threads():
    params, lam, target = _case(5, 64, 96, n=300)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            rasterizer = CpuRasterizer(64, 96)
            rasterizer.set_target(target)
            sse, grads = rasterizer.loss_and_gradients(params, lam)
            results.append((rasterizer.render(params, lam), sse, grads))
    finally:
        numba.set_num_threads(before)
    (img1, sse1, g1), (img2, sse2, g2) = results
    assert np.array_equal(img1, img2) and sse1 == sse2 and np.array_equal(g1, g2)


def test_no_gaussians_renders_black():
    rasterizer = CpuRasterizer(20, 30)
    image = rasterizer.render(np.zeros((0, 8), np.float32), np.zeros(0, np.float32))
    assert image.shape == (3, 20, 30) and not image.any()


def test_tile_lists_beyond_the_budget_are_a_clear_error(monkeypatch):
    from gi_numba.errors import GIError
    from gi_numba.raster import binning
    params = np.zeros((3, 8), np.float32)
    params[:, :2] = 20.0
    params[:, 2] = params[:, 4] = 5e3  # each covers all 6 tiles of a 40x24 canvas
    monkeypatch.setattr(binning, "MAX_ENTRIES", 17)
    with pytest.raises(GIError, match="18 \\(tile, Gaussian\\) pairs"):
        CpuRasterizer(24, 40).render(params, np.zeros(3, np.float32))
    monkeypatch.setattr(binning, "MAX_ENTRIES", 18)
    assert CpuRasterizer(24, 40).render(params, np.zeros(3, np.float32)).shape == (3, 24, 40)


def test_the_cpu_classes_are_a_rasterizer_and_a_training_state(parrots):
    """The interfaces are declared once, as protocols (the GPU's classes: ``test_cuda.py``)."""
    from gi_numba.raster import Rasterizer
    from gi_numba.strategy import TrainState
    from gi_numba.maps import IdentityMap
    from gi_numba.training import HostTraining, TrainingState
    rasterizer = CpuRasterizer(16, 24)
    assert isinstance(rasterizer, Rasterizer) and not rasterizer.trains_on_device
    params, lam = random_model(n=5, height=16, width=24)
    state = HostTraining(TrainState.fresh(params, lam), rasterizer, parrots[:16, :24], IdentityMap())
    assert isinstance(state, TrainingState)
