"""Rasteriser speed on kodim01 (768x512) with 5 000 Gaussians.

Two states (see ../shared/docs/PERFORMANCE.md):

- ``init``: means uniform, ``S = U(0,1)^3``, CAF filter ``lam = HW / (9 pi N)``;
- ``trained``: covariances ``lam`` times a log-uniform factor in ``[1, 20]``
  (with random anisotropy and orientation), filter folded in.

For each: forward (project + bin + render) and forward+backward (project +
bin + fused render/loss/backward + per-Gaussian reduction), median of 20 runs
after JIT warm-up. Prints ms, Gaussian-pixel evaluations (pixels inside some
Gaussian's tile box and row range) and ns per evaluation.

With ``--backend cuda`` the parameters stay on the GPU and each call is timed
up to ``cuda.synchronize()``, as a training step or a decoder uses it.

    python benchmarks/bench_raster.py [--threads 2] [--backend cpu|cuda] [--json]
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np

from gi_numba.image_io import load_image
from gi_numba.raster import make_rasterizer
from gi_numba.raster.binning import bin_gaussians
from gi_numba.raster.cpu import count_run_pixels
from gi_numba.raster.project import project_gaussians

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak" / "kodim01.png"


def make_state(kind, n, height, width, rng):
    """Parameters and filters of the ``init`` or ``trained`` benchmark state."""
    lam = min(height * width / (9 * math.pi * n), 300.0)
    params = np.zeros((n, 8), np.float32)
    params[:, 0] = rng.uniform(0, width, n)
    params[:, 1] = rng.uniform(0, height, n)
    params[:, 5:8] = rng.uniform(0, 0.3, (n, 3))
    if kind == "init":
        params[:, 2:5] = rng.uniform(0, 1, (n, 3))
        return params, np.full(n, lam, np.float32)
    factor = np.exp(rng.uniform(0, math.log(20), n))
    params[:, 2] = lam * factor
    params[:, 4] = lam * factor * rng.uniform(0.5, 1.5, n)
    params[:, 3] = rng.uniform(-0.3, 0.3, n) * np.sqrt(params[:, 2] * params[:, 4])
    return params, np.zeros(n, np.float32)


def evaluations(rasterizer, params, lam):
    """Gaussian-pixel evaluations of one pass, counted with the kernels' own run lengths."""
    _, box, ellipse = project_gaussians(params, lam, rasterizer.n_tiles_x, rasterizer.n_tiles_y)
    _, entry_gaussian, _, entry_rows, _ = bin_gaussians(params, box, ellipse, rasterizer.n_tiles_x,
                                                        rasterizer.n_tiles_y)
    return int(count_run_pixels(entry_rows)), int(entry_gaussian.size)


def timed_calls(rasterizer, params, lam, height, width):
    """The forward and the forward+backward call to time, on the backend's own arrays."""
    if rasterizer.name != "cuda":
        out = np.empty((3, height, width), np.float32)
        return lambda: rasterizer.render(params, lam, out), lambda: rasterizer.loss_and_gradients(params, lam)
    from numba import cuda
    d_params, d_lam = cuda.to_device(params), cuda.to_device(lam)
    image = cuda.device_array((3, height, width), np.float32)
    grads, sse = cuda.device_array_like(d_params), cuda.device_array(1, np.float64)

    def forward():
        rasterizer.render_on_device(d_params, d_lam, image)
        cuda.synchronize()

    def forward_backward():
        rasterizer.loss_and_gradients_on_device(d_params, d_lam, grads, sse)
        cuda.synchronize()

    return forward, forward_backward


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times)), 1e3 * float(np.min(times)), 1e3 * float(np.max(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--backend", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    args = parser.parse_args(argv)

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    target, _ = load_image(args.image)
    height, width = target.shape[:2]
    rasterizer = make_rasterizer(args.backend, height, width)
    rasterizer.set_target(target.transpose(2, 0, 1))
    results = {}
    for kind in ("init", "trained"):
        params, lam = make_state(kind, args.n, height, width, np.random.default_rng(args.seed))
        forward, forward_backward = timed_calls(rasterizer, params, lam, height, width)
        fwd = median_ms(forward, args.repeats)
        fwdbwd = median_ms(forward_backward, args.repeats)
        evals, entries = evaluations(rasterizer, params, lam)
        results[kind] = dict(fwd_ms=round(fwd[0], 3), fwdbwd_ms=round(fwdbwd[0], 3), evaluations=evals,
                             entries=entries, fwd_ns_per_eval=round(1e6 * fwd[0] / evals, 3),
                             fwdbwd_ns_per_eval=round(1e6 * fwdbwd[0] / evals, 3),
                             fwd_min_max_ms=[round(fwd[1], 3), round(fwd[2], 3)],
                             fwdbwd_min_max_ms=[round(fwdbwd[1], 3), round(fwdbwd[2], 3)])
    if args.json:
        print(json.dumps(results))
        return
    threads = f"threads={numba.get_num_threads()}" if args.backend == "cpu" else "GPU"
    print(f"{args.image.name} {width}x{height}, N={args.n}, backend={args.backend}, {threads}, "
          f"median of {args.repeats} after warm-up")
    print(f"{'state':8} {'fwd ms':>8} {'fwd+bwd ms':>11} {'entries':>8} {'evaluations':>12} "
          f"{'fwd ns/eval':>12} {'fwd+bwd ns/eval':>16}   min-max fwd / fwd+bwd")
    for kind, r in results.items():
        print(f"{kind:8} {r['fwd_ms']:8.3f} {r['fwdbwd_ms']:11.3f} {r['entries']:8d} {r['evaluations']:12d} "
              f"{r['fwd_ns_per_eval']:12.3f} {r['fwdbwd_ns_per_eval']:16.3f}   "
              f"{r['fwd_min_max_ms'][0]:.2f}-{r['fwd_min_max_ms'][1]:.2f} / "
              f"{r['fwdbwd_min_max_ms'][0]:.2f}-{r['fwdbwd_min_max_ms'][1]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
