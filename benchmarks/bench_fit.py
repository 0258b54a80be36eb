"""Whole fits: quality and time per image.

Fits each image at each budget and prints a table: image, N, iterations,
PSNR, MS-SSIM, fit seconds, ms per iteration, render ms (median of 10), and
what the machine gave the fit: twenty times during each fit,
``bench_cores.py``'s probe times a pure multiply-add loop on two threads
(``fma ms``, median: longer when the host is busy) and checks whether the two
threads have a core each (``cores`` about 2) or share one (about 1), the
main reasons the same fit takes different times on a virtual machine (the
probe's own time is not counted in the fit's). With ``--json`` one JSON
object per image and budget is printed per line instead. A mean row closes
the table.

    python benchmarks/bench_fit.py ../shared/data/kodak/kodim0{1,2,3}.png -n 5000 --recipe paper
    python benchmarks/bench_fit.py --kodak -n 5000            # all 24 Kodak images
"""

import argparse
import json
import sys
from pathlib import Path

import numba
import numpy as np

import gi_numba
from bench_cores import CoreProbe
from gi_numba.bench.represent import render_fps
from gi_numba.image_io import load_image

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--kodak", action="store_true", help="all 24 Kodak images from ../shared/data/kodak")
    parser.add_argument("-n", type=int, nargs="+", default=[5000])
    parser.add_argument("--recipe", default=None, help="fast or paper [fast for gi++]")
    parser.add_argument("--iterations", type=int, default=None, help="[the recipe's]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="gi++", help="gi++, gi-cholesky or gi-rs")
    parser.add_argument("--densify", action=argparse.BooleanOptionalAction, default=None,
                        help="growth and pruning [the model's default]")
    parser.add_argument("--caf", action=argparse.BooleanOptionalAction, default=None,
                        help="content-aware filters [the model's default]")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save-dir", type=Path, help="keep each fitted model here as IMAGE-N.npz")
    parser.add_argument("--json", action="store_true", help="one JSON object per fit, nothing else")
    args = parser.parse_args(argv)
    images = list(args.images) + (sorted(KODAK.glob("kodim*.png")) if args.kodak else [])
    if not images:
        parser.error("give image paths or --kodak")
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    rows = []
    if not args.json:
        print(f"model={args.model} recipe={args.recipe or 'default'} densify={args.densify} caf={args.caf} "
              f"seed={args.seed} "
              f"threads={numba.get_num_threads()}")
        print(f"{'image':12} {'N':>6} {'iters':>6} {'PSNR':>7} {'MS-SSIM':>8} {'fit s':>7} {'ms/it':>6} {'render ms':>9} "
              f"{'fma ms':>6} {'cores':>5}")
    for path in images:
        target, _ = load_image(path)
        for n in args.n:
            probe = CoreProbe()
            model = gi_numba.fit(target, n, iterations=args.iterations, seed=args.seed, recipe=args.recipe,
                                 model=args.model, densify=args.densify, caf=args.caf, progress=probe,
                                 progress_every=max((args.iterations or 10_000) // 20, 1))
            seconds = model.stats["seconds"] - probe.seconds
            rendered = model.render()
            iterations = model.stats["iterations_run"]
            row = dict(image=path.stem, n=n, iterations=iterations,
                       psnr=gi_numba.psnr(rendered, target), ms_ssim=gi_numba.ms_ssim(rendered, target),
                       seconds=seconds, ms_per_iteration=1e3 * seconds / iterations,
                       render_ms=1e3 / render_fps(model), fma_ms=probe.two_thread_ms(), cores=probe.cores(),
                       n_gaussians=model.n_gaussians)
            rows.append(row)
            if args.save_dir:
                args.save_dir.mkdir(parents=True, exist_ok=True)
                model.save(args.save_dir / f"{path.stem}-{n}.npz")
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                _print_row(row)
    if not args.json and len(rows) > 1:
        mean = {k: float(np.mean([r[k] for r in rows])) for k in
                ("psnr", "ms_ssim", "seconds", "ms_per_iteration", "render_ms", "fma_ms", "cores")}
        _print_row(dict(image="mean", n=rows[0]["n"] if len(args.n) == 1 else 0,
                        iterations=round(np.mean([r["iterations"] for r in rows])), **mean))


def _print_row(r):
    print(f"{r['image']:12} {r['n']:6d} {r['iterations']:6d} {r['psnr']:7.2f} {r['ms_ssim']:8.4f} "
          f"{r['seconds']:7.1f} {r['ms_per_iteration']:6.2f} {r['render_ms']:9.2f} {r['fma_ms']:6.2f} {r['cores']:5.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
