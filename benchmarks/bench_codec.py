"""Codec rate-distortion: real .gi files, decoded and measured.

For each image and budget N: compress (representation fit with sigmoid
colours, then quantisation-aware training), write the file, decode it, and
print N, bytes, bpp, PSNR, MS-SSIM, encode s, decode ms (median of 10), the
per-stream byte breakdown (positions / covariance / colour / header) and the
fixed-length estimate (72 bits per Gaussian) for comparison.

    python benchmarks/bench_codec.py ../shared/data/kodak/kodim{01,05,23}.png -n 800 2000 5000
    python benchmarks/bench_codec.py IMAGE -n 2000 --iterations 5000 --out-dir files/
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numba
import numpy as np

from gi_numba import bitstream
from gi_numba.codec import compress, decoded_model
from gi_numba.fit import FitSettings
from gi_numba.image_io import load_image

GROUPS = dict(positions=("dy", "x"), covariance=("a", "c", "b"), colour=("red", "green", "blue"))


def decode_ms(data, repeats=10):
    """Median wall time of parse + de-quantise + render."""
    decoded_model(data).render()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        decoded_model(data).render()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("-n", type=int, nargs="+", default=[800, 2000, 5000])
    parser.add_argument("--recipe", default=None, help="fast or paper [fast]")
    parser.add_argument("--iterations", type=int, default=None, help="[the recipe's]")
    parser.add_argument("--qat-iterations", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, help="keep the .gi files here")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, nothing else")
    args = parser.parse_args(argv)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    if not args.json:
        iterations = FitSettings(1, iterations=args.iterations, recipe=args.recipe).iterations
        qat = args.qat_iterations if args.qat_iterations is not None else max(int(0.2 * iterations), 1)
        print(f"schedule: {args.recipe or 'default'} recipe, {iterations} representation + {qat} QAT iterations, "
              f"seed {args.seed}, threads {numba.get_num_threads()}")
        print(f"{'image':9} {'N':>5} {'bytes':>7} {'bpp':>7} {'PSNR':>6} {'MS-SSIM':>7} {'enc s':>7} "
              f"{'dec ms':>7} {'pos':>6} {'cov':>6} {'col':>6} {'head':>5} {'72-bit bytes':>12}")
    for path in args.images:
        target, _ = load_image(path)
        pixels = target.shape[0] * target.shape[1]
        for n in args.n:
            data, report = compress(target, n, iterations=args.iterations, qat_iterations=args.qat_iterations,
                                    recipe=args.recipe, seed=args.seed, return_report=True)
            if args.out_dir:
                args.out_dir.mkdir(parents=True, exist_ok=True)
                (args.out_dir / f"{path.stem}-{n}.gi").write_bytes(data)
            sizes = {s.name: s.nbytes for s in bitstream.read(data).streams}
            breakdown = {g: sum(sizes[s] for s in names) for g, names in GROUPS.items()}
            breakdown["header"] = len(data) - sum(sizes.values())
            row = dict(image=path.stem, n=n, n_gaussians=report.n_gaussians, bytes=len(data),
                       bpp=8.0 * len(data) / pixels, psnr=report.psnr, ms_ssim=report.ms_ssim,
                       encode_s=report.seconds, decode_ms=decode_ms(data), breakdown=breakdown,
                       fixed_length_bytes=72 * report.n_gaussians // 8,
                       streams={s.name: [s.model, s.nbytes] for s in report.streams})
            if args.json:
                print(json.dumps(row), flush=True)
                continue
            b = breakdown
            print(f"{row['image']:9} {n:5d} {row['bytes']:7d} {row['bpp']:7.4f} {row['psnr']:6.2f} "
                  f"{row['ms_ssim']:7.4f} {row['encode_s']:7.1f} {row['decode_ms']:7.2f} {b['positions']:6d} "
                  f"{b['covariance']:6d} {b['colour']:6d} {b['header']:5d} {row['fixed_length_bytes']:12d}",
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
