"""The paper's Table 1: GaussianImage and GaussianImage++ as image representations.

For each image, method and budget: PSNR, MS-SSIM, number of parameters,
peak memory, fit seconds and render frames per second, all with the
paper's recipe (:data:`~gi_numba.recipes.PAPER`). Each fit runs in a
fresh process so that its peak resident memory (``ru_maxrss``) is its own;
on this CPU engine that is host memory, where the paper reports GPU memory.
"""

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..fit import fit
from ..image_io import load_image
from ..layout import N_PARAMS
from ..metrics import ms_ssim, psnr
from .table import ResultTable, read_rows

#: Table 1's two methods: GaussianImage (Cholesky) and GaussianImage++, each with its own defaults.
METHODS = {"GaussianImage": "gi-cholesky", "GaussianImage++": "gi++"}

FIELDS = ("image", "method", "n", "iterations", "psnr", "ms_ssim", "parameters", "peak_mib", "seconds",
          "render_fps")
TEXT_FIELDS = ("image", "method")


def result_table(path):
    """The :class:`~.table.ResultTable` of Table 1 fits (one row per image, method, budget, iterations)."""
    return ResultTable(path, FIELDS, ("image", "method", "n", "iterations"), TEXT_FIELDS)


def read_results(paths):
    return read_rows(paths, FIELDS, TEXT_FIELDS)


def _peak_mib():
    """Peak resident memory of this process in MiB (NaN where the platform does not say)."""
    try:
        import resource
    except ImportError:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def render_fps(model, repeats=10, backend="cpu"):
    """Frames per second of :meth:`GaussianImage.render` (median of ``repeats`` after one warm-up)."""
    model.render(backend=backend)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.render(backend=backend)
        times.append(time.perf_counter() - start)
    return 1.0 / float(np.median(times))


def fit_row(path, method, n_gaussians, iterations, seed=0, backend="cpu"):
    """Fit ``path`` with ``method`` in this process and measure it (run it in a fresh process)."""
    target, _ = load_image(path)
    start = time.perf_counter()
    model = fit(target, n_gaussians, iterations=iterations, seed=seed, recipe="paper", model=METHODS[method],
                backend=backend)
    seconds = time.perf_counter() - start
    rendered = model.render()
    return dict(image=Path(path).stem, method=method, n=n_gaussians, iterations=iterations,
                psnr=psnr(rendered, target), ms_ssim=ms_ssim(rendered, target),
                parameters=N_PARAMS * model.n_gaussians, peak_mib=_peak_mib(), seconds=seconds,
                render_fps=render_fps(model, backend=backend))


def measure(images, table, budgets, iterations, seed=0, on_row=None, backend="cpu"):
    """Fit every missing (image, method, budget) into ``table``, one fresh process per fit."""
    context = get_context("spawn")
    for path in images:
        for n in budgets:
            for method in METHODS:
                if table.has(Path(path).stem, method, n, iterations):
                    continue
                with ProcessPoolExecutor(1, mp_context=context) as pool:
                    row = pool.submit(fit_row, str(path), method, n, iterations, seed, backend).result()
                table.add(row)
                if on_row is not None:
                    on_row(row)


def summary(rows):
    """Markdown in the layout of the paper's Table 1: means over the images both methods have."""
    lines = ["| N | iterations | method | PSNR (dB) | MS-SSIM | parameters | peak memory (MiB) | fit s | render FPS "
             "| images |", "|---" * 10 + "|"]
    for n, iterations in sorted({(int(r["n"]), int(r["iterations"])) for r in rows}):
        subset = [r for r in rows if int(r["n"]) == n and int(r["iterations"]) == iterations]
        images = set.intersection(*({r["image"] for r in subset if r["method"] == m} for m in METHODS
                                    if any(r["method"] == m for r in subset)))
        for method in METHODS:
            mine = [r for r in subset if r["method"] == method and r["image"] in images]
            if not mine:
                continue
            mean = {key: float(np.mean([r[key] for r in mine])) for key in FIELDS if key not in TEXT_FIELDS}
            lines.append(f"| {n} | {iterations} | {method} | {mean['psnr']:.2f} | {mean['ms_ssim']:.4f} | "
                         f"{mean['parameters']:.0f} | {mean['peak_mib']:.0f} | {mean['seconds']:.1f} | "
                         f"{mean['render_fps']:.0f} | {len(mine)} |")
    return "\n".join(lines) + "\n"
