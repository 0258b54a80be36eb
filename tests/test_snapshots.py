"""Pictures of a fit in progress: `gi fit --snapshots DIR --gif out.gif`."""

import imageio.v3 as iio
import numpy as np

import gi_numba
from gi_numba.cli.main import app
from gi_numba.snapshots import ERROR_WHITE, Snapshots, centres_overlay, error_map


def test_fit_writes_pictures_at_the_asked_iterations(tmp_path, small_crop):
    pictures = Snapshots(tmp_path / "snaps", tmp_path / "fit.gif", at=[1, 50, 200], gif_frames=8)
    model = gi_numba.fit(small_crop, 60, iterations=200, snapshots=pictures)
    names = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert names == [f"{kind}-{i:06d}.png" for kind in ("centres", "error", "render") for i in (1, 50, 200)]
    first = iio.imread(tmp_path / "snaps" / "render-000001.png")
    last = iio.imread(tmp_path / "snaps" / "render-000200.png")
    assert first.shape == small_crop.shape and not first.any()  # colours start at zero
    assert np.abs(last.astype(float) / 255 - small_crop).mean() < np.abs(small_crop).mean() / 2
    frames = iio.imread(tmp_path / "fit.gif", index=None)
    assert frames.shape[0] == 9 and frames.shape[1:3] == small_crop.shape[:2]  # iteration 1 and 8 more
    assert model.n_gaussians == 60


def test_error_map_and_centres():
    target = np.zeros((6, 8, 3), np.float32)
    render = target.copy()
    render[2, 3] = ERROR_WHITE / 3  # sums to the white level over three channels
    render[4, 5, 0] = 2.0
    error = error_map(render, target)
    assert error[2, 3] == 1.0 and error[4, 5] == 1.0 and error.sum() == 2.0
    params = np.zeros((2, 8), np.float32)
    params[:, :2] = [[3.5, 2.2], [np.nan, 1.0]]
    overlay = centres_overlay(target + 1.0, params, dim=0.5)
    red = np.isclose(overlay, (1.0, 0.1, 0.1)).all(axis=2)
    assert red.sum() == 4 and red[2:4, 3:5].all()
    assert np.allclose(overlay[~red], 0.5)


def test_cli_snapshots_and_gif(tmp_path, small_crop):
    from typer.testing import CliRunner
    image = tmp_path / "crop.png"
    iio.imwrite(image, np.rint(small_crop * 255).astype(np.uint8))
    result = CliRunner().invoke(app, ["fit", str(image), "-n", "40", "--iterations", "60", "-o",
                                      str(tmp_path / "m.npz"), "--snapshots", str(tmp_path / "s"),
                                      "--snapshot-at", "1,60", "--gif", str(tmp_path / "a.gif"), "--json"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "s").glob("*.png"))) == 6 and (tmp_path / "a.gif").stat().st_size > 0
    bad = CliRunner().invoke(app, ["fit", str(image), "-n", "40", "--snapshot-at", "1,x"])
    assert bad.exit_code == 2 and "--snapshot-at needs --snapshots" in bad.output
    bad = CliRunner().invoke(app, ["fit", str(image), "-n", "40", "--snapshots", str(tmp_path / "s"),
                                   "--snapshot-at", "1,x"])
    assert bad.exit_code == 2 and "separated by commas" in bad.output
