"""The CUDA backend equals the CPU backend (run under Numba's CUDA simulator).

No GPU is needed: ``cuda_simulated.py`` runs the real kernels in Numba's
CUDA simulator in a subprocess (the simulator must be chosen before
``numba.cuda`` is imported, and it is slow, so it runs once for all the checks
here, on a 40x24 image: 3x2 tiles, 30 Gaussians).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gi_numba.errors import GIError
from gi_numba.raster import cuda_available, make_rasterizer

pytest.importorskip("numba.cuda", reason="the CUDA backend needs the numba-cuda package")


@pytest.fixture(scope="module")
def simulated():
    script = Path(__file__).with_name("cuda_simulated.py")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_tile_lists_equal(simulated):
    for case in simulated["cases"]:
        assert case["same_lists"] and case["n_entries"] > 30


def test_forward_and_loss_equal(simulated):
    for case in simulated["cases"]:
        assert case["forward"] < 1e-5
        assert case["loss"] < 1e-5


def test_every_gradient_equal(simulated):
    for case in simulated["cases"]:
        assert case["n_conditioned"] >= 10
        assert case["gradients"] < 1e-5
        assert case["gradients_all"] < 1e-3


def test_fit_trajectory_equal(simulated):
    fit = simulated["fit"]
    assert len(fit["cpu"]) == len(fit["cuda"]) == 20
    assert fit["n_cpu"] == fit["n_cuda"]
    assert np.abs(np.subtract(fit["cpu"], fit["cuda"])).max() < 1e-4
    assert fit["cpu"][-1] > fit["cpu"][0]


@pytest.mark.skipif(cuda_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(GIError, match="needs an NVIDIA GPU"):
        make_rasterizer("cuda", 24, 40)
    assert make_rasterizer("auto", 24, 40).name == "cpu"
