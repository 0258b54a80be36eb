"""docs/tutorial.md: every code block runs, and what it prints is what the text says."""

import importlib.util
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _runner():
    spec = importlib.util.spec_from_file_location("run_tutorial", DOCS / "run_tutorial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tutorial_runs_and_its_claims_hold(tmp_path, capsys):
    """Run in an empty folder, as a reader pasting the blocks at the repository root would."""
    runner = _runner()
    assert len(runner.code_blocks()) == 12
    ns = runner.run(tmp_path)
    assert np.abs(ns["fast"] - np.clip(ns["dense"], 0, 1)).max() < 1e-5                 # step 1
    assert ns["tiled_s"] < ns["dense_s"]                                                  # step 2
    assert 0 < ns["evaluated"] < 16 * 32 * len(ns["tiles"].entry_gaussian)
    assert np.abs(ns["analytic"] - ns["numeric"]).max() < 1e-5 * np.abs(ns["numeric"]).max()  # step 3
    assert np.abs(ns["fast_grads"] - ns["analytic"]).max() < 1e-4 * np.abs(ns["analytic"]).max()
    assert np.abs(ns["ours"] - ns["theirs"]).max() < 1e-5                                 # step 4
    assert ns["grown"].psnr > ns["fixed"].psnr                                            # step 5
    assert ns["holes"][True][0] < ns["holes"][False][0] / 2                               # step 6
    assert ns["holes"][True][1] < ns["holes"][False][1] / 2
    assert ns["both"].psnr > ns["grown"].psnr
    assert len(ns["data"]) == ns["report"].nbytes and ns["larger"].shape == (128, 192, 3)  # steps 8-9
    np.testing.assert_allclose(ns["drawn"][:5], [48, 32, 4, 1.6, 1.13], rtol=1e-5)          # step 10
    assert ns["both"].psnr > ns["baseline"].psnr
    pictures = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")}
    linked = set((DOCS / "tutorial.md").read_text().split("](")[1:])
    for link in {part.split(")")[0] for part in linked if part.startswith("img/")}:
        assert link in pictures, link
    out = capsys.readouterr().out
    assert "unreached at the start" in out and "bits per Gaussian" in out
    assert (tmp_path / "img" / "tutorial" / "fit.gif").stat().st_size > 0


def test_tutorial_runs_where_its_pictures_already_are(tmp_path):
    """Run in a folder that already holds ``img/tutorial/`` (as ``docs/`` does): the blocks add to it."""
    (tmp_path / "img" / "tutorial").mkdir(parents=True)
    (tmp_path / "img" / "tutorial" / "kept.txt").write_text("not the tutorial's")
    _runner().run(tmp_path)
    assert (tmp_path / "img" / "tutorial" / "crop.png").exists()
    assert (tmp_path / "img" / "tutorial" / "kept.txt").read_text() == "not the tutorial's"
