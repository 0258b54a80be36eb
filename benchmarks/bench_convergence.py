"""PSNR against wall-clock seconds of each recipe: what a user waiting at the terminal sees.

Fits every image with every recipe (same seed and ``N``, recipes alternated
image by image) and records the training PSNR of the best state so far every
``--every`` iterations with the seconds since the fit started. Writes the
points as CSV and, with ``--plot`` (needs the ``bench`` extra's matplotlib),
one panel per image with a line per recipe.

    python benchmarks/bench_convergence.py --images 5,23 -n 5000 --csv conv.csv --plot conv.png [--replot]
"""

import argparse
import csv
from pathlib import Path

from gi_numba.fit import FitSettings, fit_target
from gi_numba.image_io import load_image
from gi_numba.recipes import RECIPES

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def trajectory(target, n, recipe, seed, every):
    """``[(seconds, iteration, best PSNR)]`` of one fit, every ``every`` iterations and at its end."""
    points = []

    def record(p):
        points.append((p.elapsed, p.iteration, p.best_psnr))

    settings = FitSettings(n, seed=seed, recipe=recipe, pixels=target.shape[0] * target.shape[1])
    fit_target(target, 3, settings, record, every)
    return points


def plot(rows, images, recipes, path):
    """One panel per image: best training PSNR against seconds, a line per recipe."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images), 3.4), squeeze=False)
    for axis, image in zip(axes[0], images):
        for recipe in recipes:
            mine = [r for r in rows if r["image"] == image and r["recipe"] == recipe]
            axis.plot([r["seconds"] for r in mine], [r["psnr"] for r in mine], label=recipe)
        final = max(r["psnr"] for r in rows if r["image"] == image)
        axis.set_ylim(final - 10.0, final + 0.5)  # the last 10 dB, where the recipes differ
        axis.set_title(f"kodim{image:02d}")
        axis.set_xlabel("seconds (2 threads)")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("training PSNR of the best state (dB)")
    axes[0][0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="1,5,23", help="Kodak image numbers")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--every", type=int, default=100, help="iterations between recorded points")
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--replot", action="store_true", help="only draw --plot from an existing --csv")
    args = parser.parse_args()
    images = [int(i) for i in args.images.split(",")]
    recipes = args.recipes.split(",")
    if args.replot:
        with open(args.csv, newline="") as handle:
            rows = [dict(image=int(r["image"]), recipe=r["recipe"], seconds=float(r["seconds"]),
                         psnr=float(r["psnr"])) for r in csv.DictReader(handle)]
        plot(rows, images, recipes, args.plot)
        return
    warm = load_image(KODAK / "kodim01.png")[0][:64, :64]
    fit_target(warm, 3, FitSettings(50, iterations=20))  # compile the kernels outside the timings
    rows = []
    for image in images:
        target = load_image(KODAK / f"kodim{image:02d}.png")[0]
        for recipe in recipes:
            points = trajectory(target, args.n, recipe, args.seed, args.every)
            rows += [dict(image=image, recipe=recipe, seconds=round(s, 3), iteration=i, psnr=round(p, 4))
                     for s, i, p in points]
            s, i, p = points[-1]
            print(f"kodim{image:02d} {recipe:6s} {i:6d} iterations {s:7.1f} s {p:.2f} dB", flush=True)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if args.plot:
        plot(rows, images, recipes, args.plot)


if __name__ == "__main__":
    main()
