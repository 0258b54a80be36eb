"""`gi compress-dir`: folders, resumability, a bad file, local processes and a Dask cluster."""

import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from gi_numba import batch
from gi_numba.batch import compress_dir
from gi_numba.codec import encode
from gi_numba.errors import GIError
from gi_numba.cli.main import app

N, ITERATIONS = 24, 400


@pytest.fixture(scope="module")
def folder(tmp_path_factory, parrots):
    """Three small images and one file that only pretends to be a PNG."""
    images = tmp_path_factory.mktemp("images")
    for i, (y, x) in enumerate([(0, 0), (60, 100), (120, 200)]):
        iio.imwrite(images / f"crop{i}.png", np.rint(parrots[y:y + 24, x:x + 40] * 255).astype(np.uint8))
    (images / "broken.png").write_bytes(b"\x89PNG not really")
    (images / "notes.txt").write_text("not an image: ignored")
    return images


@pytest.fixture(scope="module")
def local_run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    rows = compress_dir(folder, out, n_gaussians=N, iterations=ITERATIONS, workers=2)
    return out, rows


def _outputs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.gi"))}


def test_every_image_compressed_and_the_bad_one_reported(local_run):
    out, rows = local_run
    assert [row["file"] for row in rows] == ["broken.png", "crop0.png", "crop1.png", "crop2.png"]
    assert [row["status"] for row in rows] == ["error", "ok", "ok", "ok"]
    assert "cannot be read as an image" in rows[0]["error"]
    assert sorted(_outputs(out)) == ["crop0.gi", "crop1.gi", "crop2.gi"]
    with open(out / "summary.csv") as handle:
        summary = list(csv.DictReader(handle))
    assert [r["status"] for r in summary] == ["error", "ok", "ok", "ok"]
    for r in summary[1:]:
        assert (int(r["height"]), int(r["width"])) == (24, 40) and N // 2 < int(r["n_gaussians"]) <= N
        assert int(r["bytes"]) == (out / r["file"].replace(".png", ".gi")).stat().st_size
        assert float(r["bpp"]) == pytest.approx(8 * int(r["bytes"]) / (24 * 40), abs=1e-4)
        assert float(r["psnr"]) > 15


def test_rerun_skips_what_is_done_and_redoes_what_is_missing(local_run, folder):
    out, _ = local_run
    before = _outputs(out)
    (out / "crop1.gi").unlink()
    (out / "crop2.gi").write_bytes(before["crop2.gi"][:-10])  # a half-written file from a crash
    rows = compress_dir(folder, out, n_gaussians=N, iterations=ITERATIONS, workers=1)
    assert [row["status"] for row in rows] == ["error", "skipped", "ok", "ok"]
    assert _outputs(out) == before  # deterministic: the redone files are the same bytes


def test_a_rate_weight_reaches_every_encode(folder, tmp_path, monkeypatch):
    weights = []

    def recording_encode(*args, **options):
        weights.append(options["lmbda"])
        return encode(*args, **options)

    monkeypatch.setattr(batch, "encode", recording_encode)
    rows = compress_dir(folder, tmp_path, n_gaussians=N, iterations=ITERATIONS, workers=1, lmbda=0.25)
    assert [row["status"] for row in rows] == ["error", "ok", "ok", "ok"] and weights == [0.25] * 3
    with pytest.raises(GIError, match="lambda must be at least 0"):
        compress_dir(folder, tmp_path, n_gaussians=N, lmbda=-1.0)


def test_dask_cluster_gives_the_same_files(local_run, folder, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        rows = compress_dir(folder, tmp_path, n_gaussians=N, iterations=ITERATIONS,
                            scheduler=cluster.scheduler_address)
    assert [row["status"] for row in rows] == ["error", "ok", "ok", "ok"]
    assert _outputs(tmp_path) == _outputs(local_run[0])


def test_cli(folder, tmp_path, local_run):
    out = tmp_path / "cli"
    out.mkdir()
    (out / "crop0.gi").write_bytes(_outputs(local_run[0])["crop0.gi"])
    result = CliRunner().invoke(app, ["compress-dir", str(folder), str(out), "-n", str(N), "--iterations",
                                      str(ITERATIONS), "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["images"], report["ok"], report["skipped"], report["error"]) == (4, 2, 1, 1)
    assert report["failed"][0]["file"] == "broken.png" and "[4/4]" in result.stderr
    bad = CliRunner().invoke(app, ["compress-dir", str(folder), str(out)])
    assert bad.exit_code == 2 and "exactly one" in bad.stderr
    bad = CliRunner().invoke(app, ["compress-dir", str(tmp_path / "nope"), str(out), "-n", "5"])
    assert bad.exit_code == 2 and "is not a folder" in bad.stderr
    (tmp_path / "file").write_text("x")
    bad = CliRunner().invoke(app, ["compress-dir", str(folder), str(tmp_path / "file" / "out"), "-n", "5"])
    assert bad.exit_code == 2 and "cannot create folder" in bad.stderr and "Traceback" not in bad.output
    bad = CliRunner().invoke(app, ["compress-dir", str(folder), str(out), "-n", "5", "--workers", "-1"])
    assert bad.exit_code == 2 and "--workers" in bad.stderr
