"""Rate-distortion optimised quantisation measured on finished encodes: BD-rate of each number of sweeps.

Each (image, N) is encoded once with the default recipe without RDOQ
(``rdo_sweeps=0``; the file and its ``lambda`` cached under ``--cache``), and
:func:`gi_numba.rdo.optimise_codes` then runs on that file's codes with each
``--sweeps`` count (0: the file as it is), at ``--lambda-scale`` times the
``lambda`` the encode's QAT trained with (default 1, as the encoder). Since RDOQ is the encoder's last
step, every row is the file the encoder with that many sweeps writes. Rows
(real bytes, decoded PSNR, Gaussians kept, seconds of RDOQ) go to a CSV that resumes; the
table is each (sweeps, scale)'s BD-rate (PSNR) against 0 sweeps, per image and
mean, with its mean seconds.

    python benchmarks/bench_rdo.py --images 1,5,9,13,17,23 -n 500,1000,2000,5000 --sweeps 0,1,2,4,8 \\
        --cache rdo-cache/ --csv rdo.csv [--lambda-scale 1.5]
"""

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from gi_numba import bitstream
from gi_numba.bench.bdrate import bd_rate
from gi_numba.codec import compress, model_of_codes
from gi_numba.image_io import load_image
from gi_numba.metrics import psnr
from gi_numba.rdo import optimise_codes
from gi_numba.recipes import recipe_named

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
FIELDS = ("image", "n", "sweeps", "scale", "bytes", "bpp", "psnr", "kept", "seconds")


def plain_encode(path, target, n, iterations, cache):
    """``(file bytes, lambda)`` of the default encode of ``target`` with ``n`` Gaussians and no RDOQ, cached."""
    stem = Path(cache) / f"{path.stem}_{n}_{iterations or 'default'}"
    if not stem.with_suffix(".gi").exists():
        recipe = recipe_named("fast").with_encode(rdo_sweeps=0)
        data, report = compress(target, n, iterations=iterations, recipe=recipe, return_report=True)
        stem.with_suffix(".json").write_text(json.dumps(dict(lmbda=report.lmbda)))
        stem.with_suffix(".gi").write_bytes(data)
    return stem.with_suffix(".gi").read_bytes(), json.loads(stem.with_suffix(".json").read_text())["lmbda"]


def measure(path, target, n, sweeps, scale, iterations, cache):
    """One CSV row: the file after ``sweeps`` sweeps of RDOQ at ``scale`` times the encode's ``lambda`` on the
    cached plain encode."""
    data, lmbda = plain_encode(path, target, n, iterations, cache)
    height, width = target.shape[:2]
    start = time.perf_counter()
    codes = optimise_codes(bitstream.read(data).codes, target, scale * lmbda, sweeps)
    seconds = time.perf_counter() - start
    written, _ = bitstream.write(codes, height, width, 3)
    decoded = model_of_codes(bitstream.read(written).codes, height, width).render()
    return dict(image=path.stem, n=n, sweeps=sweeps, scale=scale, bytes=len(written), bpp=8 * len(written) / (height * width),
                psnr=psnr(decoded, target), kept=codes.n_gaussians, seconds=seconds)


def report(rows):
    """The Markdown table: each (sweeps, lambda scale)'s BD-rate against 0 sweeps, per image and mean, the share of
    the Gaussians it removed and its mean seconds."""
    images = sorted({row["image"] for row in rows})
    settings = sorted({(int(r["sweeps"]), float(r["scale"])) for r in rows if int(r["sweeps"])})

    def curve(image, chosen):
        return sorted((float(r["bpp"]), float(r["psnr"])) for r in chosen if r["image"] == image)

    anchor = [r for r in rows if int(r["sweeps"]) == 0]
    plain = {(r["image"], int(r["n"])): int(r["kept"]) for r in anchor}
    lines = ["| sweeps | lambda x | " + " | ".join(images) + " | mean | Gaussians removed | seconds (mean) |",
             "|---" * (len(images) + 5) + "|"]
    for sweeps, scale in settings:
        chosen = [r for r in rows if (int(r["sweeps"]), float(r["scale"])) == (sweeps, scale)]
        rates = [bd_rate(*zip(*curve(image, anchor)), *zip(*curve(image, chosen))) for image in images]
        removed = [1 - int(r["kept"]) / plain[r["image"], int(r["n"])] for r in chosen]
        seconds = np.mean([float(r["seconds"]) for r in chosen])
        lines.append(f"| {sweeps} | {scale:g} | " + " | ".join(f"{rate:+.1f}%" for rate in rates)
                     + f" | {np.mean(rates):+.1f}% | {100 * min(removed):.1f}-{100 * max(removed):.1f}% | "
                     f"{seconds:.1f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="1,5,9,13,17,23", help="Kodak image numbers")
    parser.add_argument("-n", default="500,1000,2000,5000", help="Gaussian budgets")
    parser.add_argument("--sweeps", default="0,1,2,4,8", help="sweep counts (0 is the anchor)")
    parser.add_argument("--lambda-scale", type=float, default=1.0, help="RDOQ's lambda over the encode's")
    parser.add_argument("--iterations", type=int, default=None, help="the encodes' iterations [the recipe's]")
    parser.add_argument("--cache", default="rdo-cache", help="folder of the plain encodes")
    parser.add_argument("--csv", default="rdo.csv", help="rows (resumed if the file exists)")
    args = parser.parse_args()
    sweep_counts = sorted({0, *(int(s) for s in args.sweeps.split(","))})
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    path = Path(args.csv)
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    done = {(r["image"], int(r["n"]), int(r["sweeps"]), float(r["scale"])) for r in rows}
    with path.open("a", newline="") as out:
        writer = csv.DictWriter(out, FIELDS)
        if not rows:
            writer.writeheader()
        for number in args.images.split(","):
            image = KODAK / f"kodim{int(number):02d}.png"
            target = load_image(image)[0]
            for n in (int(x) for x in args.n.split(",")):
                for s in sweep_counts:
                    scale = args.lambda_scale if s else 1.0
                    if (image.stem, n, s, scale) in done:
                        continue
                    row = measure(image, target, n, s, scale, args.iterations, args.cache)
                    writer.writerow(row)
                    out.flush()
                    rows.append(row)
                    print(f"{image.stem} N {n:5d} sweeps {s}: {row['bytes']} bytes, {row['psnr']:.3f} dB, "
                          f"{row['seconds']:.1f} s", flush=True)
    print(report(rows))


if __name__ == "__main__":
    main()
