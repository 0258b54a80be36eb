"""Where else could a ``.gi`` file's bits come from? Three probes of one encoded file against its image.

    NUMBA_NUM_THREADS=1 python benchmarks/probe_coding.py kodim05.gi ../shared/data/kodak/kodim05.png

Each probe changes nothing in the file and trains nothing: it bounds what a
coding tool could gain before anyone builds it.

1. **Context models.** Per attribute stream: the entropy of its codes (about
   what the file's memoryless coder pays), the entropy of the residual from a
   causal spatial prediction (the median of the same code of the up to 4
   nearest Gaussians earlier in the file's order), and the empirical
   conditional entropy given that prediction, which counts no model cost and
   so overstates what a context model could save.
2. **Position precision tied to size.** The PSNR lost by rounding the
   position codes of every Gaussian whose size (the geometric mean of its
   standard deviations, in pixels) exceeds ``T`` to every 2nd or 4th code,
   and the position bits per Gaussian that saves.
3. **Rate-aware pruning.** Every Gaussian's removal cost (the squared error of
   the render without it, clamp included, less the file's); then the PSNR
   with the cheapest fraction ``f`` removed and the real bytes of that file.
   Compare with the image's own rate-distortion curve: on kodim05 at ~5 000
   Gaussians the default encoder gains about 3.7 dB per unit of ``ln(bytes)``
   (benchmarks/results/rd-v3-odd.csv), so 10% fewer bytes are worth 0.39 dB.
"""

import argparse
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from gi_numba import bitstream
from gi_numba.codec import model_of_codes
from gi_numba.image_io import load_image
from gi_numba.metrics import psnr
from gi_numba.quantize import QuantizedGaussians
from gi_numba.raster import make_rasterizer

STREAMS = dict(a=("variance", 0), c=("variance", 1), corr=("covariance", 0), Y=("colour", 0), Co=("colour", 1),
               Cg=("colour", 2))


def entropy(symbols):
    """Empirical entropy (bits per symbol) of integer ``symbols``."""
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def conditional_entropy(symbols, context):
    """Empirical ``H(symbols | context)`` in bits per symbol (no cost for the conditional models)."""
    total = sum(np.sum(context == value) * entropy(symbols[context == value]) for value in np.unique(context))
    return total / symbols.size


def causal_neighbours(positions, k=4, candidates=32):
    """For each Gaussian, up to ``k`` of its nearest Gaussians that come earlier in file order (``-1``: none)."""
    _, nearest = cKDTree(positions).query(positions, k=min(candidates, len(positions)))
    neighbours = np.full((len(positions), k), -1)
    for i, row in enumerate(nearest):
        earlier = row[(row < i)][:k]
        neighbours[i, :earlier.size] = earlier
    return neighbours


def predicted_codes(codes, neighbours):
    """The median code of each Gaussian's causal neighbours (the stream's median where it has none)."""
    prediction = np.full(codes.size, np.median(codes))
    for i, row in enumerate(neighbours):
        row = row[row >= 0]
        if row.size:
            prediction[i] = np.median(codes[row])
    return np.round(prediction).astype(np.int64)


def probe_contexts(codes):
    """Rows ``(stream, H, H(residual), H(code | prediction))`` of probe 1."""
    neighbours = causal_neighbours(codes.position.astype(np.float64))
    rows = []
    for name, (attribute, column) in STREAMS.items():
        values = getattr(codes, attribute)[:, column].astype(np.int64)
        prediction = predicted_codes(values, neighbours)
        rows.append((name, entropy(values), entropy(values - prediction), conditional_entropy(values, prediction)))
    return rows


def gaussian_sizes(model):
    """Geometric mean of each Gaussian's two standard deviations, in pixels: ``det(S)^(1/4)``."""
    a, b, c = model.covariances.astype(np.float64).T
    return np.maximum(a * c - b * b, 0.0) ** 0.25


def with_codes(codes, **changes):
    """``codes`` with some of its arrays replaced."""
    fields = dict(position=codes.position, variance=codes.variance, covariance=codes.covariance, colour=codes.colour)
    fields.update(changes)
    return QuantizedGaussians(codes.quantizers, **fields)


def coarser_positions(codes, chosen, factor):
    """Position codes of the ``chosen`` Gaussians rounded to the middle of every ``factor``-th code."""
    position = codes.position.astype(np.int64)
    position[chosen] = position[chosen] // factor * factor + factor // 2
    return np.clip(position, 0, 2 ** codes.quantizers.bits["position"] - 1).astype(np.uint16)


def removal_costs(params, target, height, width):
    """Squared error of the render without each Gaussian, less that of the render with all of them."""
    rasterizer = make_rasterizer("cpu", height, width)
    lam = np.zeros(params.shape[0], np.float32)
    planar_target = target.transpose(2, 0, 1)
    full = np.sum((rasterizer.render(params, lam) - planar_target) ** 2, dtype=np.float64)
    costs = np.empty(params.shape[0])
    for g in range(params.shape[0]):
        without = np.delete(params, g, axis=0)
        costs[g] = np.sum((rasterizer.render(without, lam[1:]) - planar_target) ** 2, dtype=np.float64) - full
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="a .gi file")
    parser.add_argument("image", type=Path, help="the image it encodes")
    parser.add_argument("--sizes", type=float, nargs="+", default=[2, 3, 4, 6], help="size thresholds T, pixels")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2])
    args = parser.parse_args()
    data = args.file.read_bytes()
    parsed = bitstream.read(data)
    codes, height, width = parsed.codes, parsed.height, parsed.width
    target = load_image(args.image)[0]
    model = model_of_codes(codes, height, width)
    base = psnr(model.render(), target)
    print(f"{args.file.name}: {codes.n_gaussians} Gaussians, {len(data)} bytes, {base:.3f} dB decoded")

    print("\n1. context models (bits per Gaussian)")
    print(f"{'stream':6} {'H(code)':>8} {'H(residual)':>12} {'H(code|prediction)':>19}")
    for name, plain, residual, conditional in probe_contexts(codes):
        print(f"{name:6} {plain:8.2f} {residual:12.2f} {conditional:19.2f}")

    print("\n2. position precision tied to size")
    print(f"{'T px':>5} {'factor':>6} {'share':>6} {'bits saved':>10} {'dPSNR':>7}")
    sizes = gaussian_sizes(model)
    for threshold in args.sizes:
        for factor in (2, 4):
            chosen = sizes > threshold
            coarse = with_codes(codes, position=coarser_positions(codes, chosen, factor))
            change = psnr(model_of_codes(coarse, height, width).render(), target) - base
            saved = 2 * np.log2(factor) * chosen.mean()
            print(f"{threshold:5.1f} {factor:6d} {chosen.mean():6.2f} {saved:10.2f} {change:+7.3f}", flush=True)

    print("\n3. rate-aware pruning")
    order = np.argsort(removal_costs(model.drawn_params(), target, height, width))
    print(f"{'f':>5} {'PSNR':>7} {'dPSNR':>7} {'bytes':>7} {'ln(bytes ratio)':>16}")
    for fraction in args.fractions:
        keep = np.sort(order[int(fraction * order.size):])
        pruned = with_codes(codes, position=codes.position[keep], variance=codes.variance[keep],
                            covariance=codes.covariance[keep], colour=codes.colour[keep])
        n_bytes = len(bitstream.write(pruned, height, width, parsed.channels)[0])
        value = psnr(model_of_codes(pruned, height, width).render(), target)
        print(f"{fraction:5.2f} {value:7.3f} {value - base:+7.3f} {n_bytes:7d} {np.log(n_bytes / len(data)):16.3f}",
              flush=True)


if __name__ == "__main__":
    main()
