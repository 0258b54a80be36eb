"""Decode time of ``.gi`` files, by step: parse (entropy decoding), de-quantise, render, all three.

Run it with one Numba thread for the issue's target (one core)::

    NUMBA_NUM_THREADS=1 python benchmarks/bench_decode.py kodim05.gi kodim23.gi --repeats 30

Each step is timed on its own, after a first decode that compiles the
kernels; the median of ``--repeats`` runs is printed in milliseconds, with
the file's Gaussians, bpp and stream models.

The host's speed changes by up to 3x from one hour to the next, so
``--against kodim05.png`` also times, in the same run, the classic codecs'
decoders (``bench`` extra) on that image encoded at the quality whose file
is closest in bytes to the first ``.gi`` file: compare as ratios.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from gi_numba import bitstream
from gi_numba.bench.classic import CODECS
from gi_numba.codec import decompress, model_of_codes
from gi_numba.image_io import load_image
from gi_numba.quantize import dequantize


def median_ms(function, repeats):
    """Median wall-clock milliseconds of ``function()`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def decode_steps(data, repeats):
    """``{step: median ms}`` for parse, de-quantise, render and the whole :func:`decompress`."""
    decompress(data)
    parsed = bitstream.read(data)
    model = model_of_codes(parsed.codes, parsed.height, parsed.width, parsed.channels)
    return dict(parse=median_ms(lambda: bitstream.read(data), repeats),
                dequantise=median_ms(lambda: dequantize(parsed.codes), repeats),
                render=median_ms(model.render, repeats),
                total=median_ms(lambda: decompress(data), repeats))


def closest_in_bytes(codec, rgb, n_bytes):
    """The file of ``codec`` over its quality sweep whose size is closest to ``n_bytes``."""
    return min((codec.encode(rgb, quality) for quality in codec.sweep), key=lambda data: abs(len(data) - n_bytes))


def print_classic_decodes(image_path, n_bytes, repeats):
    """Decode ms of every available classic codec at about ``n_bytes`` of ``image_path``."""
    rgb = np.round(load_image(image_path)[0] * 255.0).astype(np.uint8)
    pixels = rgb.shape[0] * rgb.shape[1]
    for name, codec in CODECS.items():
        if not codec.available():
            print(f"{name:24} not installed (pip install -e '.[bench]')")
            continue
        data = closest_in_bytes(codec, rgb, n_bytes)
        ms = median_ms(lambda: codec.decode(data), repeats)
        print(f"{name:24} {'':9} {8.0 * len(data) / pixels:7.4f} {'':7} {'':7} {'':7} {ms:7.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help=".gi files")
    parser.add_argument("--repeats", type=int, default=20, help="runs per step (median)")
    parser.add_argument("--against", type=Path, help="an image to time the classic codecs' decoders on")
    args = parser.parse_args()
    print(f"{'file':24} {'Gaussians':>9} {'bpp':>7} {'parse':>7} {'dequant':>7} {'render':>7} {'total':>7}  models")
    for path in args.files:
        data = path.read_bytes()
        parsed = bitstream.read(data)
        steps = decode_steps(data, args.repeats)
        bpp = 8.0 * len(data) / (parsed.height * parsed.width)
        models = " ".join(f"{s.name}:{s.model}" for s in parsed.streams)
        print(f"{path.name:24} {parsed.codes.n_gaussians:9d} {bpp:7.4f} {steps['parse']:7.2f} "
              f"{steps['dequantise']:7.2f} {steps['render']:7.2f} {steps['total']:7.2f}  {models}", flush=True)
    if args.against is not None:
        print_classic_decodes(args.against, len(args.files[0].read_bytes()), args.repeats)


if __name__ == "__main__":
    main()
