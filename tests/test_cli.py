"""The ``gi`` command through typer's test runner and the console entry point."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from gi_numba import bitstream
from gi_numba.cli.main import app, main
from gi_numba.model import GaussianImage


@pytest.fixture
def runner():
    return CliRunner()


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_fit_render_info_compare(runner, tmp_path, crop_png):
    model, fitted = tmp_path / "m.npz", tmp_path / "fit.png"
    out = _json(runner.invoke(app, ["fit", str(crop_png), "-n", "120", "--iterations", "600", "-o", str(model),
                                    "--render", str(fitted), "--json"]))
    assert set(out) >= {"psnr", "ms_ssim", "n_gaussians", "iterations", "seconds", "output"}
    assert out["output"] == str(model) and out["iterations"] <= 600 and 100 < out["n_gaussians"] <= 120
    assert out["recipe"] == "fast"
    assert out["psnr"] > 15 and out["ms_ssim"] is None  # MS-SSIM needs a side over 160 px

    compared = _json(runner.invoke(app, ["compare", str(crop_png), str(fitted), "--json"]))
    assert compared["psnr"] == pytest.approx(out["psnr"], abs=0.1)

    info = _json(runner.invoke(app, ["info", str(model), "--json"]))
    assert (info["height"], info["width"], info["n_gaussians"]) == (64, 96, out["n_gaussians"])

    big = tmp_path / "big.png"
    rendered = _json(runner.invoke(app, ["render", str(model), "-o", str(big), "--scale", "2", "--json"]))
    assert (rendered["height"], rendered["width"]) == (128, 192)
    assert iio.imread(big).shape == (128, 192, 3)


def test_fit_prints_a_summary_for_people(runner, tmp_path, crop_png):
    result = runner.invoke(app, ["fit", str(crop_png), "-n", "40", "--iterations", "100",
                                 "-o", str(tmp_path / "m.npz")])
    assert result.exit_code == 0
    assert "PSNR" in result.stdout and "Gaussians  " in result.stdout


def test_fit_with_the_paper_recipe_and_stopping_rules(runner, tmp_path, crop_png):
    model = tmp_path / "m.npz"
    paper = _json(runner.invoke(app, ["fit", str(crop_png), "-n", "60", "--iterations", "200", "--recipe", "paper",
                                      "-o", str(model), "--json"]))
    assert paper["recipe"] == "paper" and paper["iterations"] == 200 and paper["stopped"] is None
    assert GaussianImage.load(model).settings["recipe"] == "paper"
    reached = runner.invoke(app, ["fit", str(crop_png), "-n", "60", "--iterations", "5000", "--psnr", "20",
                                  "-o", str(model)])
    assert reached.exit_code == 0 and "stopped at --psnr" in reached.stdout
    timed = runner.invoke(app, ["fit", str(crop_png), "-n", "60", "--iterations", "1000000", "--seconds", "1",
                                "-o", str(model)])
    assert timed.exit_code == 0 and "depends on this machine's speed" in timed.stdout


@pytest.mark.parametrize("args,message", [
    (["fit", "missing.png"], "no such file"),
    (["fit", "{notimage}"], "cannot be read as an image"),
    (["fit", "{crop}", "-n", "0"], "positive integer"),
    (["fit", "{crop}", "-n", "7000"], "more than the 6144 pixels"),
    (["fit", "{tiny}"], "at least 2x2"),
    (["fit", "{crop}", "-o", "{tmp}/no/such/folder/m.npz"], "does not exist"),
    (["fit"], "give an IMAGE or --example"),
    (["fit", "{crop}", "--model", "gi-svd"], "unknown model 'gi-svd'"),
    (["fit", "{crop}", "--recipe", "slow"], "unknown recipe 'slow'"),
    (["fit", "{crop}", "--model", "gi-rs", "--recipe", "fast"], "tuned for gi++"),
    (["fit", "{crop}", "--seconds", "-1"], "--seconds"),
    (["fit", "{crop}", "--psnr", "nan"], "--psnr"),
    (["compress", "{crop}", "-n", "10", "--recipe", "slow"], "unknown recipe 'slow'"),
    (["compress", "{crop}", "-n", "10", "--lambda", "-0.1"], "--lambda must be at least 0"),
    (["compress", "{crop}", "-n", "10", "--lambda", "inf"], "--lambda must be a finite number"),
    (["compress-dir", "{tmp}", "{tmp}/out", "-n", "10", "--lambda", "-1"], "--lambda must be at least 0"),
    (["render", "{notimage}", "-o", "{tmp}/x.png"], "not a gi-numba model file"),
    (["info", "missing.npz"], "no such file"),
    (["compare", "{crop}", "{other}"], "differ in size"),
])
def test_user_errors_are_one_line_and_exit_2(runner, tmp_path, crop_png, args, message):
    (tmp_path / "fake.png").write_text("hello")
    iio.imwrite(tmp_path / "tiny.png", np.zeros((1, 5, 3), np.uint8))
    iio.imwrite(tmp_path / "other.png", np.zeros((10, 10, 3), np.uint8))
    names = dict(crop=crop_png, notimage=tmp_path / "fake.png", tiny=tmp_path / "tiny.png",
                 other=tmp_path / "other.png", tmp=tmp_path)
    result = runner.invoke(app, [a.format(**names) for a in args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_entry_point_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--no-such-option"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_entry_point_without_arguments_shows_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 0 and "fit" in capsys.readouterr().out


def test_grayscale_and_rgba_notices(runner, tmp_path, small_crop):
    rgba = np.concatenate([np.rint(small_crop * 255), np.full((64, 96, 1), 255)], axis=2).astype(np.uint8)
    iio.imwrite(tmp_path / "a.png", rgba)
    result = runner.invoke(app, ["fit", str(tmp_path / "a.png"), "-n", "30", "--iterations", "50",
                                 "-o", str(tmp_path / "a.npz"), "--json"])
    assert result.exit_code == 0 and "alpha channel dropped" in result.stderr
    json.loads(result.stdout)


def test_compress_decode_info(runner, tmp_path, crop_png):
    gi, png = tmp_path / "c.gi", tmp_path / "d.png"
    out = _json(runner.invoke(app, ["compress", str(crop_png), "-n", "150", "--iterations", "800", "-o", str(gi),
                                    "--json"]))
    assert set(out) >= {"bytes", "bpp", "psnr", "ms_ssim", "n_gaussians", "seconds", "output", "lambda", "bits"}
    assert out["bits"] == bitstream.read_header(gi.read_bytes()).bits
    assert out["lambda"] > 0 and out["bytes"] == gi.stat().st_size and out["bpp"] == pytest.approx(8 * out["bytes"] / (64 * 96))
    decoded = _json(runner.invoke(app, ["decode", str(gi), "-o", str(png), "--json"]))
    assert (decoded["height"], decoded["width"], decoded["n_gaussians"]) == (64, 96, out["n_gaussians"])
    window = _json(runner.invoke(app, ["decode", str(gi), "-o", str(tmp_path / "w.png"), "--region", "10,20,30,8",
                                       "--json"]))
    assert (window["width"], window["height"]) == (30, 8)
    assert np.array_equal(iio.imread(tmp_path / "w.png"), iio.imread(png)[20:28, 10:40])
    compared = _json(runner.invoke(app, ["compare", str(crop_png), str(png), "--json"]))
    assert compared["psnr"] == pytest.approx(out["psnr"], abs=0.05)  # the PNG rounds to 8 bits
    info = _json(runner.invoke(app, ["info", str(gi), "--json"]))
    assert info["bytes"] == out["bytes"] and sum(info["breakdown"].values()) == out["bytes"]
    assert info["version"] == 3 and [s["name"] for s in info["streams"]][4:] == ["corr", "Y", "Co", "Cg"]
    people = runner.invoke(app, ["info", str(gi)])
    assert "positions" in people.stdout and "colour" in people.stdout and ".gi version 3" in people.stdout


def test_the_recipe_chooses_the_file_version_and_bit_options_override_its_depths(runner, tmp_path, crop_png):
    """The paper recipe writes version 1 (12/10/10/6 bits), the default version 3 (12/6/6/6); a bit option
    changes only its own attribute."""
    expected = {"paper": (1, dict(position=12, variance=8, covariance=10, colour=6)),
                "fast": (3, dict(position=12, variance=8, covariance=6, colour=6))}
    for recipe, (version, bits) in expected.items():
        gi = tmp_path / f"{recipe}.gi"
        result = runner.invoke(app, ["compress", str(crop_png), "-n", "30", "--iterations", "200", "--recipe",
                                     recipe, "--variance-bits", "8", "-o", str(gi), "--json"])
        assert result.exit_code == 0, result.stderr
        info = _json(runner.invoke(app, ["info", str(gi), "--json"]))
        assert (info["version"], info["bits"]) == (version, bits), recipe


@pytest.mark.parametrize("args,message", [
    (["compress", "{crop}"], "exactly one"),
    (["compress", "{crop}", "-n", "10", "--bpp", "1"], "exactly one"),
    (["compress", "{crop}", "--bpp", "1", "--psnr", "30"], "exactly one"),
    (["compress", "{crop}", "--psnr", "-3"], "--psnr"),
    (["compress", "{crop}", "--bpp", "900", "--iterations", "10"], "outside"),
    (["compress", "{crop}", "-n", "10", "--colour-bits", "0", "--iterations", "10"], "between 1 and 16"),
    (["decode", "{bad}", "-o", "{tmp}/out.png"], "damaged"),
    (["decode", "{crop}", "-o", "{tmp}/out.png"], "wrong magic"),
    (["decode", "missing.gi", "-o", "{tmp}/out.png"], "no such file"),
    (["decode", "missing.gi", "-o", "{tmp}/out.png", "--region", "1,x,3,4"], "--region wants X,Y,W,H"),
    (["decode", "missing.gi", "-o", "{tmp}/out.png", "--region", "1,2,3"], "four integers"),
])
def test_codec_user_errors(runner, tmp_path, crop_png, args, message):
    (tmp_path / "bad.gi").write_bytes(b"GIPP\x01" + bytes(200))
    names = dict(crop=crop_png, bad=tmp_path / "bad.gi", tmp=tmp_path)
    result = runner.invoke(app, [a.format(**names) for a in args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert not (tmp_path / "out.png").exists()


def test_fit_a_gaussianimage_baseline(runner, tmp_path, crop_png):
    model = tmp_path / "gi.npz"
    out = _json(runner.invoke(app, ["fit", str(crop_png), "-n", "100", "-i", "300", "--model", "gi-cholesky",
                                    "--densify", "-o", str(model), "--json"]))
    assert out["n_gaussians"] <= 100
    settings = GaussianImage.load(model).settings
    assert (settings["model"], settings["densify"], settings["caf"]) == ("gi-cholesky", True, False)


def test_compress_to_a_psnr(runner, tmp_path, crop_png):
    out = _json(runner.invoke(app, ["compress", str(crop_png), "--psnr", "20", "--iterations", "300",
                                    "--qat-iterations", "30", "-o", str(tmp_path / "p.gi"), "--json"]))
    assert out["psnr"] >= 20 and out["bytes"] == (tmp_path / "p.gi").stat().st_size
