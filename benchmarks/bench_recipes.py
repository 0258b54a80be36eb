"""Training recipes against each other: PSNR and seconds of each variant on Kodak images.

Each variant is a recipe (:mod:`gi_numba.recipes`) with some fields changed,
written ``label:recipe,field=value,...``; fields are those of its fit's
:class:`~gi_numba.recipes.PhaseRecipe`, ``warmup.field`` those of its
encode's warm-up and ``encode.field`` those of its
:class:`~gi_numba.recipes.EncodeRecipe` (``lr_scale`` as ``a/b/c``,
``plateau`` as ``none`` or a fraction). Every variant fits every image with the same seed
and ``N``; variants alternate image by image, so a slow spell of the
machine touches them alike. Prints one row per variant (mean PSNR, mean
seconds, mean iterations run, mean Gaussians kept, per-image PSNR) as a
Markdown table.

    python benchmarks/bench_recipes.py --images 1,5,9,13,17,23 -n 5000 \\
        --variant paper5k:paper,iterations=5000 --variant fast:fast [--iterations N] [--json]
"""

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from gi_numba.fit import FitSettings, fit_target
from gi_numba.image_io import load_image
from gi_numba.metrics import psnr
from gi_numba.recipes import RECIPES

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def parse_variant(text):
    """``label:recipe,field=value,...`` -> ``(label, Recipe)``."""
    label, _, spec = text.partition(":")
    name, *changes = spec.split(",") if spec else [label]
    recipe = replace(RECIPES[name], name=label)
    for change in changes:
        key, _, value = change.partition("=")
        part, _, field = key.rpartition(".")
        change_part = {"": recipe.with_fit, "warmup": recipe.with_warmup, "encode": recipe.with_encode}[part]
        recipe = change_part(**{field: parse_value(field, value)})
    return label, recipe


def parse_value(key, value):
    """A recipe field's value from its text."""
    if value == "none":
        return None
    if key == "lr_scale":
        return tuple(float(v) for v in value.split("/"))
    if key in ("schedule", "grow_colour", "init", "colours"):
        return value
    if key in ("iterations", "file_version", "rdo_sweeps"):
        return int(value)
    return float(value)


def run(variant, target, n, seed, seconds):
    """Fit ``target`` with the variant; returns ``(psnr, seconds, iterations run, Gaussians kept)``."""
    settings = FitSettings(n, seed=seed, recipe=variant[1], seconds=seconds, pixels=target.shape[0] * target.shape[1])
    start = time.perf_counter()
    model = fit_target(target, 3, settings, progress_every=10 ** 9)
    elapsed = time.perf_counter() - start
    return psnr(model.render(), target), elapsed, model.stats["iterations_run"], model.n_gaussians


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="1,5,9,13,17,23", help="Kodak image numbers")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=None, help="wall-clock budget of every fit")
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    images = [int(i) for i in args.images.split(",")]
    rows = {label: [] for label, _ in variants}
    warm = load_image(KODAK / "kodim01.png")[0][:64, :64]
    run(variants[0], warm, 50, 0, None)  # compile the kernels outside the timings
    for number in images:
        target = load_image(KODAK / f"kodim{number:02d}.png")[0]
        for variant in variants:
            result = run(variant, target, args.n, args.seed, args.seconds)
            rows[variant[0]].append(result)
            print(f"# kodim{number:02d} {variant[0]}: {result[0]:.3f} dB, {result[1]:.1f} s, {result[2]} it, "
                  f"{result[3]} Gaussians", flush=True)
    table = {label: dict(psnr=float(np.mean([r[0] for r in results])),
                         seconds=float(np.mean([r[1] for r in results])),
                         iterations=float(np.mean([r[2] for r in results])),
                         gaussians=float(np.mean([r[3] for r in results])),
                         per_image=[round(r[0], 3) for r in results])
             for label, results in rows.items()}
    if args.json:
        print(json.dumps(dict(images=images, n=args.n, table=table)))
        return
    print(f"| variant | mean PSNR dB | mean s | mean iterations | mean Gaussians | "
          f"{' | '.join(f'kodim{i:02d}' for i in images)} |")
    print("|---|---|---|---|---|" + "---|" * len(images))
    for label, row in table.items():
        print(f"| {label} | {row['psnr']:.3f} | {row['seconds']:.1f} | {row['iterations']:.0f} | "
              f"{row['gaussians']:.0f} | "
              + " | ".join(f"{p:.2f}" for p in row["per_image"]) + " |")


if __name__ == "__main__":
    main()
