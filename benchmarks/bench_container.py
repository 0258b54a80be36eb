"""The same codes in ``.gi`` version 2 and version 3: what the container alone saves.

Versions 2 and 3 code the Gaussians alike (:data:`gi_numba.bitstream.formats.FORMATS`);
version 3 stores each categorical model as rounded logarithms of its counts
and frames its streams in fewer bytes (docs/format.md). This reads ``.gi``
files of either version (e.g. the plain encodes that ``bench_rdo.py`` caches),
writes their codes in both versions, checks that both decode to the same
codes, and prints the bytes of each and the change, per file and by Gaussian
count (a file named ``<image>_<N>_...gi`` is grouped by ``N``).

    python benchmarks/bench_container.py rdo-cache/*.gi
"""

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from gi_numba import bitstream
from gi_numba.quantize import QuantizedGaussians

ATTRIBUTES = ("position", "variance", "covariance", "colour")


def in_version(codes, version):
    """``codes`` as a file of ``version`` would hold them (the coding unchanged)."""
    return QuantizedGaussians(replace(codes.quantizers, version=version), codes.position, codes.variance,
                              codes.covariance, codes.colour)


def measure(path):
    """``(bytes in v2, bytes in v3)`` of the codes of the ``.gi`` file at ``path``."""
    parsed = bitstream.read(Path(path).read_bytes())
    if parsed.codes.quantizers.version < 2:
        raise SystemExit(f"{path}: a version-1 file codes its Gaussians differently; give v2 or v3 files")
    sizes, decoded = [], []
    for version in (2, 3):
        data, _ = bitstream.write(in_version(parsed.codes, version), parsed.height, parsed.width, parsed.channels)
        sizes.append(len(data))
        decoded.append(bitstream.read(data).codes)
    for name in ATTRIBUTES:
        assert np.array_equal(getattr(decoded[0], name), getattr(decoded[1], name)), (path, name)
    return tuple(sizes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help=".gi files of version 2 or 3")
    args = parser.parse_args()
    by_count = {}
    print("| file | v2 bytes | v3 bytes | change |\n|---|---|---|---|")
    for path in sorted(args.files):
        v2, v3 = measure(path)
        by_count.setdefault(Path(path).stem.split("_")[1] if "_" in Path(path).stem else "-", []).append(v3 / v2 - 1)
        print(f"| {Path(path).name} | {v2} | {v3} | {100 * (v3 / v2 - 1):+.2f}% |")
    print("\n| N | files | mean change |\n|---|---|---|")
    for count, changes in sorted(by_count.items(), key=lambda item: (len(item[0]), item[0])):
        print(f"| {count} | {len(changes)} | {100 * np.mean(changes):+.2f}% |")


if __name__ == "__main__":
    main()
