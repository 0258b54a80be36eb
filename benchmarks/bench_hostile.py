"""What hostile or careless input costs: exit code, seconds, peak memory and stderr of `gi` on crafted files.

    python benchmarks/bench_hostile.py                      # this checkout
    PYTHONPATH=/path/to/old/checkout python benchmarks/bench_hostile.py   # another version, for before/after

Each case runs `gi` in its own process under a watcher that reports the
child's peak resident memory (``getrusage``), so a case that aborts, panics
or allocates gigabytes shows it. The files are the ones issue "Hardening"
lists: ``.gi`` headers that lie about sizes (CRC recomputed), a Laplace model
over +-2^31, checkpoints with bad metadata or a 2^40 declared shape, a black
14000x14000 16-bit PNG of 1 MB, out-of-range options and an output equal to
its input. ``--only TEXT`` runs the cases whose name contains TEXT.
"""

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

WATCH = """
import resource, subprocess, sys, time
start = time.perf_counter()
run = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=int({timeout}))
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(repr((run.returncode, time.perf_counter() - start, peak, run.stderr)))
"""

MAGIC, HEADER, STREAM = b"GIPP", struct.Struct("<4sBIIBIBBBB"), struct.Struct("<BBH")


def with_crc(body):
    return bytes(body) + zlib.crc32(bytes(body)).to_bytes(4, "little")


def crafted_gi(height, width, count, streams):
    """A version-1 ``.gi`` file with the given header and ``(model id, params, payload)`` streams."""
    body = HEADER.pack(MAGIC, 1, height, width, 3, count, 12, 10, 10, 6) + struct.pack("<16f", *[1.0] * 16)
    body += struct.pack("<B", len(streams))
    for index, (model, params, payload) in enumerate(streams):
        body += STREAM.pack(index, model, len(params)) + params + struct.pack("<I", len(payload)) + payload
    return with_crc(body)


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def empty_histograms(count):
    return [(2, struct.pack("<ii", 0, 1) + varint(count) + varint(0), b"")] * 8


def checkpoint(path, params_member=None, **meta):
    """A ``.npz`` checkpoint with ``meta`` fields replaced (and optionally a raw ``params.npy``)."""
    fields = dict(format="gi-numba-model", version=1, height=32, width=32, channels=3, iteration=0, seed=0,
                  settings={}, psnr=None, stats={})
    fields.update(meta)
    buffer = io.BytesIO()
    np.savez(buffer, params=np.zeros((4, 8), np.float32), lam=np.zeros(4, np.float32),
             meta=np.array(json.dumps(fields)))
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            data = params_member if name == "params.npy" and params_member is not None else source.read(name)
            target.writestr(name, data)


def huge_npy_header():
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, dict(descr="<f4", fortran_order=False, shape=(1 << 40, 8)))
    return header.getvalue() + bytes(64)


def black_png16(path, width, height):
    """A valid black 16-bit RGB PNG: about 1 MB on disk for 14000x14000 (1.2 GB of rows once inflated)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    deflate, row = zlib.compressobj(9), bytes(1 + 6 * width)
    idat = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def small_files(folder):
    """A real 96x64 photo, its checkpoint and its ``.gi`` (made by the version under test)."""
    import imageio.v3 as iio
    from gi_numba.image_io import example_image_path, load_image
    photo = folder / "s.png"
    iio.imwrite(photo, np.rint(load_image(example_image_path())[0][40:104, 130:226] * 255).astype(np.uint8))
    gi(folder, "compress", photo, "-n", 30, "--iterations", 200, "-o", folder / "s.gi")
    gi(folder, "fit", photo, "-n", 30, "--iterations", 200, "-o", folder / "s.npz")
    return photo, folder / "s.gi", folder / "s.npz"


def gi(folder, *args, timeout=180):
    """``(exit code, seconds, peak MB, stderr)`` of one ``gi`` run in a watched child process."""
    command = [sys.executable, "-c", WATCH.format(timeout=timeout), sys.executable, "-c",
               "from gi_numba.cli.main import main; main()", *map(str, args)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 30, cwd=folder)
        return eval(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else (None, 0, 0, out.stderr)
    except subprocess.TimeoutExpired:
        return ("timeout", timeout, 0, "")


def cases(folder):
    """``(name, gi arguments)`` of every case; writes the crafted files into ``folder``."""
    photo, gi_file, model = small_files(folder)
    (folder / "liar.gi").write_bytes(crafted_gi(4096, 4096, 1 << 24, empty_histograms(1 << 24)))
    (folder / "abort.gi").write_bytes(crafted_gi(65535, 65535, 1 << 31, empty_histograms(1 << 31)))
    body = bytearray(gi_file.read_bytes()[:-4])
    struct.pack_into("<II", body, 5, 100_000, 100_000)
    (folder / "square.gi").write_bytes(with_crc(body))
    struct.pack_into("<II", body, 5, 1_048_624, 64)
    (folder / "tall.gi").write_bytes(with_crc(body))
    laplace = (1, struct.pack("<iiff", -2 ** 31, 2 ** 31 - 1, 0.0, 1.0), b"\x01\x00\x00\x00")
    (folder / "panic.gi").write_bytes(crafted_gi(64, 96, 10, [laplace] * 8))
    checkpoint(folder / "huge_shape.npz", params_member=huge_npy_header())
    checkpoint(folder / "abc.npz", height="abc")
    checkpoint(folder / "zero.npz", height=0)
    checkpoint(folder / "square.npz", height=100_000, width=100_000)
    black_png16(folder / "big16.png", 14000, 14000)
    return [
        (".gi, 2^24 Gaussians, empty streams (`info`)", ["info", "liar.gi"]),
        (".gi, count 2^31 (`info`)", ["info", "abort.gi"]),
        (".gi, 100000x100000 header (`decode`)", ["decode", "square.gi", "-o", "out1.png"]),
        (".gi, 64x1048624 header (`decode`)", ["decode", "tall.gi", "-o", "out2.png"]),
        (".gi, Laplace support +-2^31 (`info`)", ["info", "panic.gi"]),
        (".npz, params shape 2^40 x 8 (`info`)", ["info", "huge_shape.npz"]),
        (".npz, height \"abc\" (`render`)", ["render", "abc.npz", "-o", "out3.png"]),
        (".npz, height 0 (`info`)", ["info", "zero.npz"]),
        (".npz, 100000x100000 (`render`)", ["render", "square.npz", "-o", "out4.png"]),
        ("16-bit PNG 14000x14000, 1 MB (`fit`)", ["fit", "big16.png", "-n", 10, "--iterations", 1]),
        ("`render --scale inf`", ["render", model.name, "-o", "out5.png", "--scale", "inf"]),
        ("`decode --scale 1e6`", ["decode", gi_file.name, "-o", "out6.png", "--scale", "1e6"]),
        ("`decode --scale 85`: 8160x5440, within the limit", ["decode", gi_file.name, "-o", "big.png", "--scale", 85]),
        ("`fit --seed -1`", ["fit", photo.name, "-n", 10, "--iterations", 10, "--seed", -1, "-o", "m2.npz"]),
        ("`compress --bpp inf`", ["compress", photo.name, "--bpp", "inf", "-o", "x.gi"]),
        ("`compress --qat-iterations -5`", ["compress", photo.name, "-n", 10, "--qat-iterations", -5, "-o", "y.gi"]),
        ("`compress s.png -o s.png`", ["compress", photo.name, "-n", 10, "--iterations", 50, "-o", photo.name]),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=180, help="seconds per case")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = parser.parse_args()
    import gi_numba
    print(f"gi_numba from {Path(gi_numba.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"| case | exit | seconds | peak MB | stderr lines | first stderr line |\n|---|---|---|---|---|---|")
        all_cases = cases(folder)
        photo_bytes = (folder / "s.png").read_bytes()
        for name, args_ in all_cases:
            if args.only not in name:
                continue
            code, seconds, peak, stderr = gi(folder, *args_, timeout=args.timeout)
            lines = [line for line in stderr.splitlines() if line.strip()]
            first = (lines[0] if lines else "")[:90].replace("|", "/")
            print(f"| {name} | {code} | {seconds:.1f} | {peak:.0f} | {len(lines)} | {first} |", flush=True)
        changed = (folder / "s.png").read_bytes() != photo_bytes
        print(f"\nsource photo overwritten by `compress s.png -o s.png`: {changed}")
        outputs = sorted(p.name for p in folder.glob("out*.png"))
        print(f"outputs written by refused decodes/renders: {outputs or 'none'}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
