"""Rate-distortion benchmark: our ``.gi`` files against classic codecs on the same images.

Every point is a real file: its size in bytes gives the rate (bits per
pixel), and the decoded image is compared with the original by the same
PSNR / MS-SSIM code (:mod:`gi_numba.metrics`) for every method.

* :func:`measure` visits each image, each method and each setting (our
  Gaussian budget ``N``, a classic codec's quality), and appends the points
  to a CSV (:func:`point_table`; a rerun skips the points already there, so
  a long run can be interrupted and resumed, or split over processes that
  write separate CSVs).
* :func:`summary` reads the points of one or more CSVs and writes the
  Markdown summary: each method's PSNR and MS-SSIM at fixed rates, its
  BD-rate against JPEG, and its decode time; then our BD-rate against every
  other method, per image.
* :func:`plot` draws bpp-PSNR and bpp-MS-SSIM curves (matplotlib).
"""

import io
import math
import time
from pathlib import Path

import numpy as np

from ..codec import compress, decoded_model
from ..fileio import write_atomically
from ..image_io import load_image
from ..metrics import ms_ssim, psnr
from ..recipes import DEFAULT_RECIPE
from .bdrate import bd_rate, quality_at_rate
from .classic import CODECS
from .table import ResultTable, read_rows

OURS = "gi++"
FIELDS = ("image", "method", "setting", "bytes", "bpp", "psnr", "ms_ssim", "encode_s", "decode_ms")
SUMMARY_RATES = (0.15, 0.25, 0.5, 0.75, 1.0)


TEXT_FIELDS = ("image", "method", "setting")


def point_table(path):
    """The :class:`~.table.ResultTable` of RD points at ``path`` (one row per image, method, setting)."""
    return ResultTable(path, FIELDS, TEXT_FIELDS, TEXT_FIELDS)


def read_results(paths):
    """The points of one or more CSVs written by :func:`measure`."""
    return read_rows(paths, FIELDS, TEXT_FIELDS)


def _timed_median(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times))


def _point(image, method, setting, data, decoded, target, encode_s, decode_s):
    pixels = target.shape[0] * target.shape[1]
    return dict(image=image, method=method, setting=str(setting), bytes=len(data), bpp=8.0 * len(data) / pixels,
                psnr=psnr(decoded, target), ms_ssim=ms_ssim(decoded, target), encode_s=encode_s,
                decode_ms=1e3 * decode_s)


def classic_point(codec, image, target, quality, repeats=3):
    """One point of a classic codec: encode ``target`` at ``quality``, decode, measure."""
    rgb = np.round(target * 255.0).astype(np.uint8)
    data, encode_s = _timed_median(lambda: codec.encode(rgb, quality), 1)
    decoded, decode_s = _timed_median(lambda: codec.decode(data), repeats)
    return _point(image, codec.name, quality, data, decoded.astype(np.float32) / 255.0, target, encode_s, decode_s)


def our_method(recipe=None):
    """Our codec's name in the points table: ``gi++``, or ``gi++ (paper)`` with a recipe other than the default."""
    return OURS if recipe in (None, DEFAULT_RECIPE) else f"{OURS} ({recipe})"


def our_point(image, target, n_gaussians, iterations, seed=0, repeats=3, backend="cpu", recipe=None):
    """One point of our codec: compress with ``n_gaussians``, decode the bytes, measure."""
    data, encode_s = _timed_median(
        lambda: compress(target, n_gaussians, iterations=iterations, seed=seed, recipe=recipe, backend=backend), 1)
    decoded, decode_s = _timed_median(lambda: decoded_model(data).render(backend=backend), repeats)
    return _point(image, our_method(recipe), n_gaussians, data, decoded, target, encode_s, decode_s)


def measure(images, table, codecs, budgets, iterations, seed=0, on_point=None, backend="cpu", recipe=None):
    """Measure every missing point of ``images`` x (our ``budgets`` + ``codecs``) into ``table``.

    ``codecs`` are :class:`~.classic.ClassicCodec` objects (available ones);
    ``on_point(row)`` is called after each new point; ``backend`` runs our
    codec on the CPU or a GPU; ``recipe`` and ``iterations`` are
    :func:`~gi_numba.codec.compress`'s.
    """
    for path in images:
        name = Path(path).stem
        target, _ = load_image(path)
        for n in budgets:
            if not table.has(name, our_method(recipe), n):
                _record(table, our_point(name, target, n, iterations, seed, backend=backend, recipe=recipe),
                        on_point)
        for codec in codecs:
            for quality in codec.sweep:
                if not table.has(name, codec.name, quality):
                    _record(table, classic_point(codec, name, target, quality), on_point)


def _record(table, row, on_point):
    table.add(row)
    if on_point is not None:
        on_point(row)


def common_images(rows):
    """Images that every method in ``rows`` has points for (the set all averages use)."""
    methods = {row["method"] for row in rows}
    return sorted(image for image in {row["image"] for row in rows}
                  if all(any(r["image"] == image and r["method"] == m for r in rows) for m in methods))


def mean_curves(rows):
    """``{method: {"bpp", "psnr", "ms_ssim", "setting"}}``: each setting's points averaged over the common images.

    Settings missing on any common image are left out, so every point of a
    curve is a mean over the same images.
    """
    images = set(common_images(rows))
    curves = {}
    for method in sorted({row["method"] for row in rows}):
        by_setting = {}
        for row in rows:
            if row["method"] == method and row["image"] in images:
                by_setting.setdefault(row["setting"], []).append(row)
        points = [(np.mean([r["bpp"] for r in pts]), np.mean([r["psnr"] for r in pts]),
                   np.mean([r["ms_ssim"] for r in pts]), setting)
                  for setting, pts in by_setting.items() if len(pts) == len(images)]
        points.sort()
        curves[method] = dict(bpp=np.array([p[0] for p in points]), psnr=np.array([p[1] for p in points]),
                              ms_ssim=np.array([p[2] for p in points]), setting=[p[3] for p in points])
    return curves


def mean_bd_rate(rows, method, anchor="jpeg"):
    """BD-rate (PSNR) of ``method`` against ``anchor`` per common image, averaged; with the image count."""
    values = []
    for image in common_images(rows):
        def curve(m):
            pts = [r for r in rows if r["image"] == image and r["method"] == m]
            return [r["bpp"] for r in pts], [r["psnr"] for r in pts]
        value = bd_rate(*curve(anchor), *curve(method))
        if not math.isnan(value):
            values.append(value)
    return (float(np.mean(values)) if values else math.nan), len(values)


def _label(method):
    return "GaussianImage++ (gi-numba)" if method == OURS else CODECS[method].label if method in CODECS else method


def _cell(value, digits):
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def summary(rows, rates=SUMMARY_RATES, anchor="jpeg"):
    """The Markdown summary of the points: quality at fixed rates, BD-rate vs ``anchor``, decode time."""
    images = common_images(rows)
    curves = mean_curves(rows)
    lines = [f"Mean over {len(images)} images. PSNR (dB) / MS-SSIM interpolated (PCHIP in log-rate) on each "
             f"method's mean curve; – where the rate is outside the method's measured range.", ""]
    header = "| method | " + " | ".join(f"{rate:g} bpp" for rate in rates) + \
             f" | BD-rate vs {_label(anchor)} | decode ms | points |"
    lines += [header, "|---" * (len(rates) + 4) + "|"]
    for method, curve in curves.items():
        cells = []
        for rate in rates:
            p = quality_at_rate(curve["bpp"], curve["psnr"], rate) if curve["bpp"].size else math.nan
            s = quality_at_rate(curve["bpp"], curve["ms_ssim"], rate) if curve["bpp"].size else math.nan
            cells.append(f"{_cell(p, 2)} / {_cell(s, 4)}")
        bd, counted = mean_bd_rate(rows, method, anchor) if method != anchor else (0.0, len(images))
        bd_text = "–" if math.isnan(bd) else f"{bd:+.1f}% ({counted} images)"
        decode = np.mean([r["decode_ms"] for r in rows if r["method"] == method and r["image"] in images])
        lines.append(f"| {_label(method)} | " + " | ".join(cells) + f" | {bd_text} | {decode:.1f} | "
                     f"{curve['bpp'].size} |")
    lines += ["", "BD-rate: average bit-rate difference at equal PSNR over the PSNR range both curves cover, "
              "per image, then averaged (negative = fewer bits than the anchor). The rate columns average "
              "each setting's points over the images, and a classic codec's setting lands at other rates on "
              "other images: compare methods by BD-rate."]
    if OURS in curves:
        lines += [""] + ours_against_each(rows)
    return "\n".join(lines) + "\n"


def ours_against_each(rows):
    """Markdown lines: our BD-rate (PSNR) against every other method, per common image and averaged."""
    anchors = sorted({row["method"] for row in rows} - {OURS})
    lines = [f"BD-rate of {_label(OURS)} against each method (PSNR; negative = fewer bits than it):", "",
             "| image | " + " | ".join(_label(a) for a in anchors) + " |", "|---" * (len(anchors) + 1) + "|"]
    for image in common_images(rows):
        cells = [mean_bd_rate([r for r in rows if r["image"] == image], OURS, anchor)[0] for anchor in anchors]
        lines.append(f"| {image} | " + " | ".join("–" if math.isnan(c) else f"{c:+.1f}%" for c in cells) + " |")
    means = [mean_bd_rate(rows, OURS, anchor)[0] for anchor in anchors]
    lines.append("| **mean** | " + " | ".join("–" if math.isnan(m) else f"**{m:+.1f}%**" for m in means) + " |")
    return lines


def plot(rows, path, max_bpp=2.0, title=None):
    """Write bpp-PSNR and bpp-MS-SSIM curves (mean over common images) to a PNG (needs matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = mean_curves(rows)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, curve in curves.items():
        shown = curve["bpp"] <= max_bpp
        style = dict(marker="o", markersize=3, linewidth=2.2 if method == OURS else 1.3)
        for axis, key in zip(axes, ("psnr", "ms_ssim")):
            axis.plot(curve["bpp"][shown], curve[key][shown], label=_label(method), **style)
    for axis, name in zip(axes, ("PSNR (dB)", "MS-SSIM")):
        axis.set_xlabel("bits per pixel")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    count = f"mean over {len(common_images(rows))} images"
    figure.suptitle(f"{title} ({count})" if title else f"Rate-distortion, {count}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    write_atomically(path, buffer.getvalue())
