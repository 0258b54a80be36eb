"""Large images: peak memory and time per iteration of fitting, and decode time, whole and by region.

Each case runs in its own process (so its peak RSS is its own): a Kodak image
upscaled to the size (bicubic, ``scipy.ndimage.zoom``) is fitted for a few
iterations with the case's budget (growth then happens every
``iterations / 10``, so the fit densifies as a full one would), then the model
is rendered whole and as one 512x512 region (``gi decode --region``).

    python benchmarks/bench_scale.py                    # 2048x2048 / 50 000 and 8192x8192 / 500 000
    python benchmarks/bench_scale.py --case 2048 50000 --iterations 20 --json
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
CASES = [(2048, 50_000), (8192, 500_000)]


def upscaled(size, source):
    """A ``size x size`` float32 RGB image: ``source`` zoomed to cover it, centre-cropped."""
    from scipy.ndimage import zoom

    from gi_numba.image_io import load_image
    image, _ = load_image(source)
    factor = size / min(image.shape[:2])
    big = np.stack([zoom(image[..., c], factor, order=3) for c in range(3)], axis=2)
    y0, x0 = (big.shape[0] - size) // 2, (big.shape[1] - size) // 2
    return np.clip(big[y0:y0 + size, x0:x0 + size], 0, 1).astype(np.float32)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def run_case(size, n, iterations, source):
    """Fit and decode one case in this process; returns its measurements."""
    import gi_numba
    from gi_numba.raster.binning import bin_gaussians
    from gi_numba.raster.project import project_gaussians, tile_grid

    image = upscaled(size, source)
    rss_image = peak_rss_mib()
    times = []

    def progress(p):
        times.append(time.perf_counter())

    start = time.perf_counter()
    model = gi_numba.fit(image, n, iterations=iterations, progress=progress, progress_every=1)
    fit_s = time.perf_counter() - start
    steady = np.diff(times[1:]) if len(times) > 2 else np.array([np.nan])
    start = time.perf_counter()
    whole = model.render()
    render_s = time.perf_counter() - start
    start = time.perf_counter()
    model.render(region=(size // 2, size // 2, 512, 512))
    region_s = time.perf_counter() - start
    drawn = model.drawn_params()
    _, box, ellipse = project_gaussians(drawn, model.lam, *tile_grid(size, size))
    entries = bin_gaussians(drawn, box, ellipse, *tile_grid(size, size))[1].size
    return dict(size=size, n_max=n, n_gaussians=model.n_gaussians, iterations=iterations,
                psnr=round(gi_numba.psnr(whole, image), 3), fit_s=round(fit_s, 2),
                median_iteration_s=round(float(np.median(steady)), 4), max_iteration_s=round(float(steady.max()), 4),
                render_s=round(render_s, 3), region_512_s=round(region_s, 4), tile_entries=int(entries),
                entries_per_gaussian=round(entries / max(model.n_gaussians, 1), 2),
                rss_image_mib=round(rss_image), peak_rss_mib=round(peak_rss_mib()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", nargs=2, type=int, action="append", metavar=("SIZE", "N"))
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--image", type=Path, default=KODAK / "kodim23.png")
    parser.add_argument("--json", action="store_true", help="one JSON object per case, nothing else")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_process:
        (size, n), = args.case
        print(json.dumps(run_case(size, n, args.iterations, args.image)))
        return
    rows = []
    for size, n in args.case or CASES:
        command = [sys.executable, __file__, "--in-process", "--case", str(size), str(n),
                   "--iterations", str(args.iterations), "--image", str(args.image)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"case {size}x{size} / {n} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if args.json:
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        return
    print(f"{'size':>10} {'N max':>8} {'N':>8} {'it':>4} {'s/it med':>9} {'s/it max':>9} {'render s':>9} "
          f"{'512² region s':>14} {'entries':>10} {'peak RSS MiB':>13} {'PSNR':>6}")
    for r in rows:
        print(f"{r['size']:>5}x{r['size']:<4} {r['n_max']:>8} {r['n_gaussians']:>8} {r['iterations']:>4} "
              f"{r['median_iteration_s']:>9.3f} {r['max_iteration_s']:>9.3f} {r['render_s']:>9.3f} "
              f"{r['region_512_s']:>14.4f} {r['tile_entries']:>10} {r['peak_rss_mib']:>13} {r['psnr']:>6.2f}")


if __name__ == "__main__":
    main()
