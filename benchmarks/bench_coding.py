"""Codings of the encoder against each other: BD-rate and bits per Gaussian, from one shared warm-up.

A codec encode is a warm-up fit, then quantisation-aware training and the
file (:func:`gi_numba.encoder.encode_warm`). A coding (the ``.gi`` version and
the bit depths) changes only the second part, so each (image, N) warm-up of
the recipe is fitted once and cached as ``.npz`` under ``--cache``, and every
variant runs its QAT from that same model: a variant costs a tenth of an
encode. Variants are written ``label:version=V,position=B,variance=B,
covariance=B,colour=B,slope=K,lambda=L`` (unset depths: the version's defaults; the rate term of
quantisation-aware training, :func:`gi_numba.encoder.rate_weight`, at the recipe's ``rate_slope`` unless
``slope`` (0: none) or a fixed ``lambda`` is given). Rows (real
file bytes, decoded PSNR, Gaussians kept, bytes per stream) go to a CSV that
resumes; the tables printed are each variant's BD-rate (PSNR) against the
first one, per image and mean, with its mean bits per Gaussian per stream,
and its bits per Gaussian per attribute at equal PSNR.

    python benchmarks/bench_coding.py --images 1,5,9,13,17,23 -n 800,1500,3000 --cache warm/ \\
        --csv coding.csv --variant v1:version=1 --variant v2:version=2 --variant v2-var7:version=2,variance=7
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from gi_numba import bitstream
from gi_numba.bench.bdrate import bd_rate
from gi_numba.bench.table import ResultTable
from gi_numba.codec import decompress
from gi_numba.encoder import encode_warm, plan_encode
from gi_numba.fit import fit_target
from gi_numba.image_io import load_image
from gi_numba.metrics import psnr
from gi_numba.model import GaussianImage
from gi_numba.recipes import recipe_named

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
FIELDS = ("label", "image", "n", "bytes", "bpp", "psnr", "kept", "seconds", "streams")


def parse_variant(text):
    """``label:version=V,slope=K,lambda=L,name=bits,...`` -> ``(label, version, rate, {attribute: bits})``.

    ``rate`` holds the ``slope`` and ``lambda`` given (as floats; unset: the recipe's).
    """
    label, _, spec = text.partition(":")
    settings = dict(item.split("=") for item in spec.split(",") if item)
    version = int(settings.pop("version", 2))
    rate = {key: float(settings.pop(key)) for key in ("slope", "lambda") if key in settings}
    return label, version, rate, {name: int(bits) for name, bits in settings.items()}


def warm_model(path, target, n, recipe, cache):
    """The encode's warm-up model of ``target`` with ``n`` Gaussians, fitted once and cached."""
    settings = plan_encode(n, recipe=recipe).warmup
    file = Path(cache) / f"{Path(path).stem}_{n}_{recipe.name}.npz"
    if file.exists():
        stored = np.load(file)
        model = GaussianImage(params=stored["params"], lam=stored["lam"], height=target.shape[0],
                              width=target.shape[1], channels=3, stats=dict(interrupted=False))
    else:
        model = fit_target(target, 3, settings, name="warm-up")
        partial = file.with_suffix(".partial.npz")
        np.savez(partial, params=model.params, lam=model.lam)
        os.replace(partial, file)
    return model


def encode_row(label, version, rate, bits, path, target, n, recipe, cache):
    """One variant's file from the cached warm-up: its size, decoded PSNR and bytes per stream."""
    warm = warm_model(path, target, n, recipe, cache)
    changes = dict(file_version=version)
    if "slope" in rate:
        changes["rate_slope"] = rate["slope"] or None
    plan = plan_encode(n, recipe=recipe.with_encode(**changes), bits=bits or None, lmbda=rate.get("lambda"))
    start = time.perf_counter()
    codes, _, _ = encode_warm(warm, target, plan)
    data, streams = bitstream.write(codes, target.shape[0], target.shape[1], 3)
    seconds = time.perf_counter() - start
    return dict(label=label, image=Path(path).stem, n=str(n), bytes=len(data),
                bpp=8.0 * len(data) / (target.shape[0] * target.shape[1]), psnr=psnr(decompress(data), target),
                kept=codes.n_gaussians, seconds=seconds,
                streams=json.dumps({s.name: s.nbytes for s in streams}))


def summary(rows, labels):
    """Markdown: each variant's BD-rate against the first per image and mean, and its bits per Gaussian."""
    images = sorted({row["image"] for row in rows})
    points = {}
    for row in rows:
        points.setdefault((row["label"], row["image"]), {})[int(row["n"])] = row
    lines = ["| variant | " + " | ".join(images) + " | mean | bits per Gaussian by stream |",
             "|---|" + "---|" * (len(images) + 2)]
    for label in labels:
        rates = []
        for image in images:
            anchor, test = points.get((labels[0], image), {}), points.get((label, image), {})
            common = sorted(set(anchor) & set(test))
            rates.append(None if len(common) < 3 else bd_rate(
                [anchor[n]["bpp"] for n in common], [anchor[n]["psnr"] for n in common],
                [test[n]["bpp"] for n in common], [test[n]["psnr"] for n in common]))
        known = [r for r in rates if r is not None]
        per_stream = {}
        for (name, _), by_n in points.items():
            if name == label:
                for row in by_n.values():
                    for stream, nbytes in json.loads(row["streams"]).items():
                        per_stream.setdefault(stream, []).append(8.0 * nbytes / row["kept"])
        bits = " ".join(f"{stream} {np.mean(values):.1f}" for stream, values in per_stream.items())
        cells = ["–" if r is None else f"{r:+.1f}%" for r in rates]
        mean = f"{np.mean(known):+.1f}%" if known else "–"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean} | {bits} |")
    return "\n".join(lines)


#: The streams of each attribute, in either version's names.
ATTRIBUTE_STREAMS = dict(position=("dy", "x"), variance=("a", "c"), covariance=("b", "corr"),
                         colour=("red", "green", "blue", "Y", "Co", "Cg"))


def equal_psnr_table(rows, labels):
    """Markdown: each variant's bits per Gaussian by attribute, its Gaussians and bpp at equal PSNR.

    Per image, the PSNR is the first variant's at the middle ``N`` that all share; each
    variant's counts are interpolated linearly in PSNR between its two points
    around it (images outside a variant's range are left out), then averaged.
    """
    by_image = {}
    for row in rows:
        by_image.setdefault(row["image"], {}).setdefault(row["label"], []).append(row)
    table = {label: [] for label in labels}
    for variants in by_image.values():
        if not all(label in variants for label in labels):
            continue
        common = sorted(set.intersection(*({int(r["n"]) for r in variants[label]} for label in labels)))
        goal = next(float(r["psnr"]) for r in variants[labels[0]] if int(r["n"]) == common[len(common) // 2])
        for label in labels:
            points = sorted(variants.get(label, []), key=lambda r: float(r["psnr"]))
            for low, high in zip(points, points[1:]):
                if float(low["psnr"]) <= goal <= float(high["psnr"]):
                    t = (goal - float(low["psnr"])) / (float(high["psnr"]) - float(low["psnr"]))
                    table[label].append({key: (1 - t) * value + t * _measures(high)[key]
                                         for key, value in _measures(low).items()})
                    break
    lines = ["| variant | images | " + " | ".join(ATTRIBUTE_STREAMS) + " | total | Gaussians | bpp |",
             "|---|---|" + "---|" * (len(ATTRIBUTE_STREAMS) + 3)]
    for label in labels:
        found = table[label]
        if found:
            mean = {key: np.mean([f[key] for f in found]) for key in found[0]}
            cells = [f"{mean[name]:.1f}" for name in ATTRIBUTE_STREAMS]
            lines.append(f"| {label} | {len(found)} | " + " | ".join(cells)
                         + f" | {mean['total']:.1f} | {mean['kept']:.0f} | {mean['bpp']:.4f} |")
    return "\n".join(lines)


def _measures(row):
    """Bits per Gaussian of each attribute's streams and in all, Gaussians kept and bpp of one row."""
    streams, kept = json.loads(row["streams"]), float(row["kept"])
    out = {name: sum(8.0 * streams.get(s, 0) for s in names) / kept for name, names in ATTRIBUTE_STREAMS.items()}
    return dict(out, total=sum(out.values()), kept=kept, bpp=float(row["bpp"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="1,5,9,13,17,23", help="Kodak image numbers")
    parser.add_argument("-n", default="800,1500,3000", help="Gaussian budgets (comma-separated)")
    parser.add_argument("--recipe", default="fast", help="recipe of the warm-up and QAT")
    parser.add_argument("--variant", action="append", required=True, help="label:version=V,attribute=bits,...")
    parser.add_argument("--cache", type=Path, required=True, help="folder of the cached warm-up models")
    parser.add_argument("--csv", type=Path, required=True, help="rows (resumed if the file exists)")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    recipe = recipe_named(args.recipe)
    variants = [parse_variant(text) for text in args.variant]
    table = ResultTable(args.csv, FIELDS, ("label", "image", "n"), {"label", "image", "n", "streams"})
    for number in args.images.split(","):
        path = KODAK / f"kodim{int(number):02d}.png"
        target, _ = load_image(path)
        for n in (int(v) for v in args.n.split(",")):
            for label, version, rate, bits in variants:
                if not table.has(label, path.stem, n):
                    row = encode_row(label, version, rate, bits, path, target, n, recipe, args.cache)
                    table.add(row)
                    print(f"{label:14} {path.stem} {n:6d} {row['bytes']:7d} B {row['psnr']:6.2f} dB", flush=True)
    labels = [variant[0] for variant in variants]
    print(summary(table.rows, labels))
    print()
    print(equal_psnr_table(table.rows, labels))


if __name__ == "__main__":
    main()
