"""The paper's ablation (its Figure 6): each GaussianImage++ component added to each parameterisation.

Every variant fits the same images with the same budget, iterations and
seed, with the paper's recipe (:data:`~gi_numba.recipes.PAPER`); the table
reports PSNR, MS-SSIM and fit time per variant (mean over
images) and each variant's gain over GaussianImage with a Cholesky
covariance, the paper's baseline.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fit import fit
from ..image_io import load_image
from ..metrics import ms_ssim, psnr
from .table import ResultTable, read_rows


@dataclass(frozen=True)
class Variant:
    """One line of the ablation: a model and its components."""

    label: str
    model: str
    densify: bool
    caf: bool


VARIANTS = (
    Variant("GI-Cholesky", "gi-cholesky", False, False),
    Variant("GI-Cholesky + densify", "gi-cholesky", True, False),
    Variant("GI-Cholesky + densify + CAF", "gi-cholesky", True, True),
    Variant("GI-RS", "gi-rs", False, False),
    Variant("GI-RS + densify", "gi-rs", True, False),
    Variant("GI-RS + densify + CAF", "gi-rs", True, True),
    Variant("GI++ without CAF", "gi++", True, False),
    Variant("GI++", "gi++", True, True),
)
BASELINE = VARIANTS[0].label

FIELDS = ("image", "variant", "n", "iterations", "psnr", "ms_ssim", "seconds", "n_gaussians")
TEXT_FIELDS = ("image", "variant")


def result_table(path):
    """The :class:`~.table.ResultTable` of ablation fits (one row per image, variant, budget, iterations)."""
    return ResultTable(path, FIELDS, ("image", "variant", "n", "iterations"), TEXT_FIELDS)


def read_results(paths):
    return read_rows(paths, FIELDS, TEXT_FIELDS)


def fit_variant(variant, name, target, n_gaussians, iterations, seed=0, backend="cpu"):
    """Fit one image with one variant; the row of the result table."""
    start = time.perf_counter()
    model = fit(target, n_gaussians, iterations=iterations, seed=seed, recipe="paper", model=variant.model,
                densify=variant.densify, caf=variant.caf, backend=backend)
    seconds = time.perf_counter() - start
    rendered = model.render()
    return dict(image=name, variant=variant.label, n=n_gaussians, iterations=iterations,
                psnr=psnr(rendered, target), ms_ssim=ms_ssim(rendered, target), seconds=seconds,
                n_gaussians=model.n_gaussians)


def measure(images, table, n_gaussians, iterations, variants=VARIANTS, seed=0, on_row=None, backend="cpu"):
    """Fit every missing (image, variant) pair into ``table``; ``on_row(row)`` after each fit."""
    for path in images:
        name = Path(path).stem
        target, _ = load_image(path)
        for variant in variants:
            if not table.has(name, variant.label, n_gaussians, iterations):
                row = fit_variant(variant, name, target, n_gaussians, iterations, seed, backend)
                table.add(row)
                if on_row is not None:
                    on_row(row)


def summary(rows):
    """Markdown: mean PSNR / MS-SSIM / fit s per variant and budget, and the gain over GI-Cholesky."""
    lines = []
    for n, iterations in sorted({(int(r["n"]), int(r["iterations"])) for r in rows}):
        subset = [r for r in rows if int(r["n"]) == n and int(r["iterations"]) == iterations]
        labels = [v.label for v in VARIANTS if any(r["variant"] == v.label for r in subset)]
        images = sorted(i for i in {r["image"] for r in subset}
                        if all(any(r["image"] == i and r["variant"] == label for r in subset) for label in labels))
        means = {label: {key: float(np.mean([r[key] for r in subset if r["variant"] == label and r["image"] in images]))
                         for key in ("psnr", "ms_ssim", "seconds")} for label in labels}
        lines += [f"N = {n}, {iterations} iterations, mean over {len(images)} images ({', '.join(images)})", "",
                  "| variant | PSNR (dB) | MS-SSIM | fit s | PSNR gain over GI-Cholesky |", "|---|---|---|---|---|"]
        for label in labels:
            gain = means[label]["psnr"] - means[BASELINE]["psnr"] if BASELINE in means else float("nan")
            lines.append(f"| {label} | {means[label]['psnr']:.2f} | {means[label]['ms_ssim']:.4f} | "
                         f"{means[label]['seconds']:.1f} | {gain:+.2f} |")
        lines.append("")
    return "\n".join(lines)
