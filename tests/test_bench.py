"""The evaluation suite: BD-rate, result tables, classic codecs, and ``gi bench`` end to end on a small image."""

import csv
import dataclasses
import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from gi_numba.bench import ablation, rd, represent
from gi_numba.bench.bdrate import bd_rate, quality_at_rate
from gi_numba.bench.classic import CODECS
from gi_numba.bench.table import ResultTable
from gi_numba.cli.main import app

RATES = np.array([0.125, 0.25, 0.5, 1.0, 2.0])
PSNRS = np.array([24.0, 27.0, 30.5, 33.0, 36.5])


def test_bd_rate_of_a_curve_shifted_in_rate_is_the_shift():
    """Every quality reached with 20% fewer bits: BD-rate is -20% exactly, whatever the curve's shape."""
    assert bd_rate(RATES, PSNRS, 0.8 * RATES, PSNRS) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(RATES, PSNRS, 1.5 * RATES, PSNRS) == pytest.approx(50.0, abs=1e-9)
    assert bd_rate(RATES, PSNRS, RATES[::-1], PSNRS[::-1]) == pytest.approx(0.0, abs=1e-12)  # order-free


def test_bd_rate_without_overlap_is_nan():
    assert math.isnan(bd_rate(RATES, PSNRS, RATES, PSNRS + 20.0))


def test_quality_at_rate_interpolates_in_log_rate_and_refuses_to_extrapolate():
    assert quality_at_rate(RATES, PSNRS, 0.5) == pytest.approx(30.5)
    # a straight line in log-rate is reproduced exactly by the monotone cubic
    line = 20.0 + 3.0 * np.log2(RATES / 0.125)
    assert quality_at_rate(RATES, line, 0.3) == pytest.approx(20.0 + 3.0 * math.log2(2.4))
    assert math.isnan(quality_at_rate(RATES, PSNRS, 0.1))
    assert math.isnan(quality_at_rate(RATES, PSNRS, 2.5))


def _rows(method, rates, psnrs, images=("a", "b")):
    return [dict(image=image, method=method, setting=str(i), bytes=1.0, bpp=float(r), psnr=float(p),
                 ms_ssim=0.9, encode_s=0.0, decode_ms=1.0)
            for image in images for i, (r, p) in enumerate(zip(rates, psnrs))]


def test_summary_reports_bd_rate_and_quality_at_rates():
    rows = _rows("jpeg", RATES, PSNRS) + _rows(rd.OURS, 0.8 * RATES, PSNRS)
    text = rd.summary(rows)
    ours = next(line for line in text.splitlines() if line.startswith("| GaussianImage++"))
    assert "-20.0% (2 images)" in ours
    assert "| 30.50 / 0.9000 |" in next(line for line in text.splitlines() if line.startswith("| JPEG |"))


def test_summary_gives_our_bd_rate_against_each_method_per_image():
    rows = (_rows("jpeg", RATES, PSNRS) + _rows("webp", 0.5 * RATES, PSNRS, images=("a",))
            + _rows("webp", 2.0 * RATES, PSNRS, images=("b",)) + _rows(rd.OURS, RATES, PSNRS))
    lines = rd.summary(rows).splitlines()
    assert "| image | JPEG | WebP |" in lines
    assert "| a | +0.0% | +100.0% |" in lines and "| b | +0.0% | -50.0% |" in lines
    assert "| **mean** | **+0.0%** | **+25.0%** |" in lines


def test_mean_curves_use_only_images_every_method_has():
    rows = _rows("jpeg", RATES, PSNRS) + _rows(rd.OURS, RATES, PSNRS + 1.0, images=("a",))
    assert rd.common_images(rows) == ["a"]
    np.testing.assert_allclose(rd.mean_curves(rows)["gi++"]["psnr"], PSNRS + 1.0)


def test_result_table_resumes_and_writes_whole_csv(tmp_path):
    path = tmp_path / "points.csv"
    table = rd.point_table(path)
    row = _rows("jpeg", RATES[:1], PSNRS[:1], images=("a",))[0]
    table.add(row)
    again = rd.point_table(path)
    assert again.has("a", "jpeg", "0") and not again.has("a", "jpeg", "1")
    assert again.rows[0]["psnr"] == pytest.approx(24.0)
    with open(path, newline="") as handle:
        assert next(csv.reader(handle)) == list(rd.FIELDS)


def test_result_table_refuses_a_foreign_csv(tmp_path):
    from gi_numba.errors import GIError
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(GIError, match="not a result CSV"):
        ResultTable(tmp_path / "other.csv", rd.FIELDS, rd.TEXT_FIELDS, rd.TEXT_FIELDS)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_classic_codec_round_trip_and_rate_grows_with_quality(name, parrots):
    codec = CODECS[name]
    if not codec.available():
        pytest.skip(f"{name} is not installed (bench extra)")
    rgb = np.rint(parrots * 255).astype(np.uint8)
    low, high = codec.encode(rgb, codec.sweep[0]), codec.encode(rgb, codec.sweep[-1])
    decoded = codec.decode(high)
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    assert len(low) < len(high)
    assert np.abs(decoded.astype(int) - rgb).mean() < 3.0


def test_gi_bench_rd_writes_points_summary_and_plot_and_resumes(tmp_path, crop_png):
    if not CODECS["jpeg"].available():
        pytest.skip("no JPEG codec installed (bench extra)")
    runner = CliRunner()
    args = ["bench", "rd", str(crop_png), "--codecs", "jpeg", "-n", "40,120", "-i", "60",
            "--csv", str(tmp_path / "rd.csv"), "--summary", str(tmp_path / "rd.md"), "--plot", str(tmp_path / "rd.png")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = rd.read_results([tmp_path / "rd.csv"])
    assert {r["method"] for r in rows} == {"gi++", "jpeg"}
    assert len(rows) == 2 + len(CODECS["jpeg"].sweep)
    ours = [r for r in rows if r["method"] == "gi++"]
    # the rate is the real file size: 8 bits per byte over the pixels
    assert all(r["bpp"] == pytest.approx(8 * r["bytes"] / (96 * 64)) for r in ours)
    assert "| JPEG |" in (tmp_path / "rd.md").read_text()
    try:
        import matplotlib  # noqa: F401
        assert iio.imread(tmp_path / "rd.png").ndim == 3
    except ImportError:
        assert "matplotlib is not installed" in result.stderr
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and len(rd.read_results([tmp_path / "rd.csv"])) == len(rows)
    assert "gi++" not in again.stderr  # nothing was measured twice


def test_missing_codec_is_skipped_with_a_notice(tmp_path, crop_png, monkeypatch):
    monkeypatch.setitem(CODECS, "avif", dataclasses.replace(CODECS["avif"], _available=lambda: False))
    result = CliRunner().invoke(app, ["bench", "rd", str(crop_png), "--codecs", "avif", "-n", "30", "-i", "20",
                                      "--csv", str(tmp_path / "rd.csv")])
    assert result.exit_code == 0, result.output
    assert "skipping avif: not installed" in result.stderr
    assert {r["method"] for r in rd.read_results([tmp_path / "rd.csv"])} == {"gi++"}


@pytest.mark.parametrize("args,message", [
    (["rd", "{img}", "--codecs", "jpeg,gif"], "unknown codec 'gif'"),
    (["rd", "{img}", "-n", "10,x"], "-n wants values separated by commas"),
    (["rd", "{img}", "-n", "0"], "budgets must be positive"),
    (["ablation", "missing.png"], "no such file or folder"),
    (["represent", "{img}", "-i", "0"], "--iterations must be a positive integer"),
    (["report", "missing.csv"], "no such file"),
])
def test_bench_user_errors_are_one_line(tmp_path, crop_png, args, message):
    result = CliRunner().invoke(app, ["bench"] + [a.format(img=crop_png) for a in args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_gi_bench_ablation_runs_every_variant(tmp_path, crop_png):
    result = CliRunner().invoke(app, ["bench", "ablation", str(crop_png), "-n", "60", "-i", "40",
                                      "--csv", str(tmp_path / "a.csv"), "--summary", str(tmp_path / "a.md")])
    assert result.exit_code == 0, result.output
    rows = ablation.read_results([tmp_path / "a.csv"])
    assert [r["variant"] for r in rows] == [v.label for v in ablation.VARIANTS]
    by_variant = {r["variant"]: r for r in rows}
    # GaussianImage keeps all its Gaussians; GI++ grows from half of them to the budget
    assert by_variant["GI-Cholesky"]["n_gaussians"] == 60 and by_variant["GI++"]["n_gaussians"] <= 60
    assert "| GI-Cholesky | " in (tmp_path / "a.md").read_text()


def test_gi_bench_represent_measures_each_fit_in_its_own_process(tmp_path, crop_png):
    result = CliRunner().invoke(app, ["bench", "represent", str(crop_png), "-n", "50", "-i", "30",
                                      "--csv", str(tmp_path / "r.csv"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # one JSON object on stdout; MS-SSIM of a 96x64 image is NaN -> null
    assert out["rows"][0]["ms_ssim"] is None and "| 50 | 30 | GaussianImage |" in out["summary"]
    rows = represent.read_results([tmp_path / "r.csv"])
    assert [r["method"] for r in rows] == list(represent.METHODS)
    assert all(r["parameters"] == 8 * 50 or r["method"] == "GaussianImage++" for r in rows)
    assert all(r["peak_mib"] > 10 and r["render_fps"] > 0 for r in rows)


def test_report_reads_each_kind_of_csv_and_merges_files(tmp_path):
    first, second = rd.point_table(tmp_path / "a.csv"), rd.point_table(tmp_path / "b.csv")
    for row in _rows("jpeg", RATES, PSNRS, images=("a",)):
        first.add(row)
    for row in _rows("jpeg", RATES, PSNRS, images=("b",)):
        second.add(row)
    result = CliRunner().invoke(app, ["bench", "report", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Mean over 2 images")

    table = ablation.result_table(tmp_path / "abl.csv")
    for variant, value in (("GI-Cholesky", 25.0), ("GI++", 27.5)):
        table.add(dict(image="a", variant=variant, n=100, iterations=10, psnr=value, ms_ssim=0.9, seconds=1.0,
                       n_gaussians=100))
    result = CliRunner().invoke(app, ["bench", "report", str(tmp_path / "abl.csv")])
    assert result.exit_code == 0, result.output
    assert "| GI++ | 27.50 | 0.9000 | 1.0 | +2.50 |" in result.stdout

    mixed = CliRunner().invoke(app, ["bench", "report", str(tmp_path / "a.csv"), str(tmp_path / "abl.csv")])
    assert mixed.exit_code == 2 and "different gi bench commands" in mixed.stderr
    as_json = CliRunner().invoke(app, ["bench", "report", str(tmp_path / "abl.csv"), "--json"])
    out = json.loads(as_json.stdout)
    assert [row["variant"] for row in out["rows"]] == ["GI-Cholesky", "GI++"] and "| GI++ |" in out["summary"]
    plot = CliRunner().invoke(app, ["bench", "report", str(tmp_path / "abl.csv"), "--plot", str(tmp_path / "p.png")])
    assert plot.exit_code == 2 and "--plot draws rate-distortion curves" in plot.stderr
