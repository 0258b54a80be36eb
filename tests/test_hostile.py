"""Hostile and careless input: crafted `.gi` and `.npz` files, Ctrl-C, clobbered outputs, odd images, bad options.

Every case here was a crash, a runaway allocation or lost work before the
limits of :mod:`gi_numba.limits` and the SIGINT handling of
:mod:`gi_numba.interrupt`: each must now be one clear error line (exit code
2), or a clean stop that keeps what was done (exit code 130).
"""

import contextlib
import functools
import io
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import types
import zipfile
import zlib

import imageio.v3 as iio
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import gi_numba
from conftest import random_model
from gi_numba import bitstream, interrupt
from gi_numba.bitstream import FORMATS, container
from gi_numba.bitstream.framing import INDEXED
from gi_numba.bitstream.models import HISTOGRAM, MODELS, Stream
from gi_numba.bitstream.varint import pack_bits, varints
from gi_numba.batch import compress_dir, compress_job, jobs_for, output_names
from gi_numba.cli.main import main
from gi_numba.codec import compress, compress_to_rate, decompress
from gi_numba.errors import GIError
from gi_numba.fileio import check_writable
from gi_numba.image_io import load_image
from gi_numba.limits import DEFAULT_MAX_PIXELS
from gi_numba.model import GaussianImage
from gi_numba.quantize import initial_quantizers, quantize

# ----------------------------------------------------------------------------- helpers


def gi(*args, fresh=False):
    """Run the ``gi`` command; ``(returncode, stderr)`` as attributes.

    With ``fresh`` it runs in a new interpreter, where a crash cannot take the
    test run with it and text that native code prints to stderr is seen.
    """
    argv = [str(a) for a in args]
    if fresh:
        return subprocess.run([sys.executable, "-c", "from gi_numba.cli.main import main; main()", *argv],
                              capture_output=True, text=True, timeout=120)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return types.SimpleNamespace(returncode=code, stderr=stderr.getvalue())


def assert_one_error_line(run, *fragments):
    """Exit code 2, and stderr is exactly one ``error:`` line holding every fragment."""
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


#: The fixed header, packed from the container's own field table.
HEADER = struct.Struct("<" + "".join(code for _, code in container.HEADER_FIELDS))
MODEL_NAMED = {model.name: model for model in MODELS.values()}


@functools.lru_cache
def valid_file(n=120, height=64, width=96, version=1):
    """A real ``.gi`` file of random Gaussians (what an encoder writes, without the fit)."""
    params, lam = random_model(n=n, height=height, width=width)
    return bitstream.write(quantize(params, lam, initial_quantizers(params, lam, version=version)), height, width,
                           3)[0]


def with_crc(body):
    """``body`` with its CRC-32 appended: what an attacker does after editing a file."""
    return bytes(body) + zlib.crc32(bytes(body)).to_bytes(4, "little")


def crafted(height, width, count, streams, bits=(12, 10, 10, 6), version=2):
    """A ``.gi`` file of ``version`` with the given header and stream records ``(model, params, payload)``,
    CRC recomputed."""
    body = HEADER.pack(bitstream.MAGIC, version, height, width, 3, count, *bits)
    body += struct.pack("<16f", *[1.0] * 16) + struct.pack("<B", len(streams))
    for index, (model, params, payload) in enumerate(streams):
        body += FORMATS[version].framing.record(index, MODEL_NAMED[model], params, payload)
    return with_crc(body)


def empty_histogram(count):
    """A histogram stream saying "all ``count`` symbols are 0" with an empty payload (costs no bytes)."""
    return "histogram", struct.pack("<ii", 0, 1) + varints([count, 0]), b""


def peak_traced_bytes(function, *args, **kwargs):
    """``(result or the GIError raised, peak bytes allocated meanwhile)`` as traced by tracemalloc."""
    tracemalloc.start()
    try:
        try:
            result = function(*args, **kwargs)
        except GIError as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------- 1. crafted .gi files


def test_a_lying_count_with_empty_streams_costs_nothing(tmp_path):
    """259 bytes claiming 2^24 Gaussians (8 s and 1.9 GB for `gi info` before): refused before decoding."""
    data = crafted(4096, 4096, 1 << 24, [empty_histogram(1 << 24)] * 8)
    assert len(data) < 300
    error, peak = peak_traced_bytes(bitstream.read, data)
    assert isinstance(error, GIError) and "over the limit" in str(error)
    assert peak < 100_000
    path = tmp_path / "liar.gi"
    path.write_bytes(data)
    assert_one_error_line(gi("info", path), "Gaussians", "over the limit")


def test_under_one_bit_per_gaussian_is_refused():
    """Within every limit, 2^20 Gaussians in 200 bytes of streams cannot be a real encoding."""
    error, peak = peak_traced_bytes(bitstream.read, crafted(4096, 4096, 1 << 20, [empty_histogram(1 << 20)] * 8))
    assert isinstance(error, bitstream.CorruptFile) and "under one bit per Gaussian" in str(error)
    assert peak < 100_000


def test_two_billion_gaussians_do_not_abort_the_process(tmp_path):
    """count = 2^31 made the entropy coder abort (exit 134, 'memory allocation of 8589934592 bytes failed')."""
    path = tmp_path / "abort.gi"
    path.write_bytes(crafted(65535, 65535, 1 << 31, [empty_histogram(1 << 31)] * 8))
    for command in ("info", "decode"):
        args = [command, path] + (["-o", tmp_path / "out.png"] if command == "decode" else [])
        assert_one_error_line(gi(*args, fresh=True), "over the limit")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("height,width", [(100_000, 100_000), (1_048_624, 64), (1, 1 << 31)])
def test_huge_declared_images_are_refused_before_allocating(tmp_path, height, width):
    """100000x100000 was a MemoryError traceback; 64x1048624 decoded for 14 s at 5.5 GB and wrote the PNG."""
    body = bytearray(valid_file()[:-4])
    struct.pack_into("<II", body, 5, height, width)
    data = with_crc(body)
    error, peak = peak_traced_bytes(decompress, data)
    assert isinstance(error, GIError) and "over the limit" in str(error) and peak < 1_000_000
    path = tmp_path / "huge.gi"
    path.write_bytes(data)
    assert_one_error_line(gi("decode", path, "-o", tmp_path / "out.png"), f"{width}x{height}", "over the limit")
    assert not (tmp_path / "out.png").exists()


def test_the_pixel_limit_is_an_option(tmp_path):
    data = valid_file(height=64, width=96)
    with pytest.raises(GIError, match="over the limit of 6143 pixels"):
        decompress(data, max_pixels=6143)
    assert decompress(data, max_pixels=6144).shape == (64, 96, 3)
    with pytest.raises(GIError, match="output size 192x128"):
        decompress(data, scale=2, max_pixels=6144)
    path = tmp_path / "ok.gi"
    path.write_bytes(data)
    assert_one_error_line(gi("decode", path, "-o", tmp_path / "x.png", "--max-pixels", 6000), "over the limit")
    assert gi("decode", path, "-o", tmp_path / "x.png", "--max-pixels", 6144).returncode == 0


def test_a_laplace_support_outside_the_alphabet_is_no_rust_panic(tmp_path):
    """A Laplace model over +-2^31 printed four lines of Rust panic text."""
    laplace = ("laplace", struct.pack("<iiff", -2 ** 31, 2 ** 31 - 1, 0.0, 1.0), b"\x01\x00\x00\x00")
    path = tmp_path / "panic.gi"
    path.write_bytes(crafted(64, 96, 10, [laplace] * 8))
    run = gi("info", path, fresh=True)
    assert_one_error_line(run, "outside the code alphabet")
    assert "panicked" not in run.stderr


@pytest.mark.parametrize("params", [
    struct.pack("<iiff", 0, 4096, 0.0, 0.0),           # zero scale
    struct.pack("<iiff", 0, 4096, math.nan, 1.0),      # NaN mean
    struct.pack("<iiff", 0, 4096, 1e9, 1.0),           # mean far outside the support
    struct.pack("<iiff", 5, 5, 5.0, 1.0),              # empty support
    struct.pack("<iif", 0, 4096, 0.0),                 # short parameters
])
def test_bad_laplace_models_are_damage(params):
    with pytest.raises(bitstream.CorruptFile, match="entropy model"):
        bitstream.read(crafted(64, 96, 10, [("laplace", params, b"\x01\x00\x00\x00")] * 8))


def test_streams_must_be_used_up_exactly():
    """An ANS payload with words its symbols do not use is damage (the coder must end empty)."""
    data = bytearray(valid_file())
    body = data[:-4]
    symbols = np.zeros(120, np.int64)
    params, payload = HISTOGRAM.encode(Stream(symbols % 2 + np.arange(120) % 3, 12), INDEXED)
    stream = ("histogram", params, payload + b"\x07\x00\x00\x00")
    with pytest.raises(bitstream.CorruptFile, match="longer than its symbols"):
        bitstream.read(crafted(64, 96, 120, [stream] * 8))
    assert bitstream.read(with_crc(body))  # the valid file itself parses


def _log_histogram(low, high, per_octave, width, levels):
    """Version-3 log-histogram parameters as written, with any values (``levels`` packed at ``width`` bits)."""
    packed = pack_bits(np.asarray(levels, np.int64), max(width, 1))
    return varints([low, high]) + bytes([per_octave, width]) + packed


@pytest.mark.parametrize("params,message", [
    (_log_histogram(0, 3, 3, 2, [1, 1, 1, 1]), "entropy model"),                  # not a precision
    (_log_histogram(0, 3, 1, 0, [0, 0, 0, 0]), "entropy model"),                  # zero-bit levels
    (varints([0, 3]) + bytes([1, 9]) + bytes(5), "entropy model"),   # 9-bit levels
    (_log_histogram(0, 3, 1, 2, [0, 0, 0, 0]), "entropy model"),                  # no symbol has a weight
    (_log_histogram(0, 1, 1, 8, [255, 1]), "entropy model"),                      # weight 2^254
    (_log_histogram(0, 5000, 1, 1, [1] * 5001), "outside the code alphabet"),     # beyond 12-bit codes
    (varints([0, 2 ** 34]), "outside the code alphabet"),    # 2^34 levels declared
    (b"\x80\x80\x80\x80\x80\x01", "varint longer"),                              # a six-byte varint
], ids=["precision", "zero-width", "wide", "no-weight", "huge-weight", "support", "huge-support", "varint"])
def test_bad_log_histograms_are_damage(params, message):
    with pytest.raises(bitstream.CorruptFile, match=message):
        bitstream.read(crafted(64, 96, 10, [("log-histogram", params, b"\x01\x00\x00\x00")] * 8, version=3))


def test_a_version_3_file_cut_anywhere_is_damage():
    """Every prefix of a valid version-3 file, its CRC recomputed, is refused with a :class:`CorruptFile`."""
    body = valid_file(n=40, version=3)[:-4]
    for cut in range(len(body)):
        with pytest.raises(bitstream.CorruptFile):
            bitstream.read(with_crc(body[:cut]))


def test_version_3_refuses_version_2_models_and_version_2_refuses_its_own():
    exact = ("histogram", struct.pack("<ii", 0, 1) + varints([10, 0]), b"")
    with pytest.raises(bitstream.CorruptFile, match="bad stream table"):
        bitstream.read(crafted(64, 96, 10, [exact] * 8, version=3))
    coarse = ("log-histogram", _log_histogram(0, 1, 1, 1, [1, 0]), b"")
    with pytest.raises(bitstream.CorruptFile, match="bad stream table"):
        bitstream.read(crafted(64, 96, 10, [coarse] * 8, version=2))
    assert bitstream.read(crafted(64, 96, 10, [coarse] * 8, version=3)).codes.n_gaussians == 10


def test_fixed_streams_must_have_their_exact_size():
    with pytest.raises(bitstream.CorruptFile, match="wrong size"):
        bitstream.read(crafted(64, 96, 10, [("fixed", b"", bytes(64))] * 8))


@pytest.mark.parametrize("version", [1, 2, 3])
def test_flipped_size_bits_with_a_fixed_crc_are_clear_errors(version):
    """2 000 width/height bit flips behind a recomputed CRC gave 12 MemoryError tracebacks."""
    original = valid_file(version=version)
    rng = np.random.default_rng(7)
    for _ in range(2000):
        body = bytearray(original[:-4])
        body[5 + rng.integers(0, 8)] ^= 1 << rng.integers(0, 8)
        try:
            bitstream.read(with_crc(body), max_pixels=1 << 16)
        except GIError:
            pass


def _with_quantiser_float(data, field, value):
    """``data`` with the first float32 of quantiser parameter ``field`` set to ``value``, CRC recomputed."""
    index = 0
    for name, count in container.QUANTIZER_FIELDS:
        if name == field:
            break
        index += count
    body = bytearray(data[:-4])
    struct.pack_into("<f", body, container.HEADER_BYTES + 4 * index, value)
    return with_crc(body)


@pytest.mark.parametrize("version", [1, 3])
@pytest.mark.parametrize("field,value,message", [
    ("position_offset", 1e7, "far outside the image"),       # every Gaussian off the image: a black picture
    ("position_step", -3.0, "far outside the image"),
    ("variance_offset", 800.0, "variances outside"),         # exp overflows to infinity
    ("variance_offset", -200.0, "variances outside"),        # every Gaussian a point
    ("colour_step", 1e6, "colours outside"),
], ids=["off-image", "negative-step", "overflow", "underflow", "colour"])
def test_quantiser_parameters_no_encoder_writes_are_refused(tmp_path, version, field, value, message):
    """Two crafted 601-byte files were decoded to an all-black PNG, one printing NumPy's overflow warning."""
    path, out = tmp_path / "crafted.gi", tmp_path / "out.png"
    path.write_bytes(_with_quantiser_float(valid_file(version=version), field, value))
    for command in ("info", "decode"):
        assert_one_error_line(gi(command, path, *(["-o", out] if command == "decode" else [])), message)
    assert not out.exists()
    assert bitstream.read(valid_file(version=version)).codes.n_gaussians == 120  # the file itself is valid


#: The bound stated for the property test: with ``max_pixels = 2^16`` a file may declare at most 4 096 Gaussians.
FUZZ_MAX_PIXELS = 1 << 16
FUZZ_PEAK_BYTES = 2_000_000


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_headers_and_streams_behind_a_valid_crc_never_crash_or_allocate(data):
    """Random header fields, stream bytes and lengths, CRC recomputed, in files of every version: only
    GIError, and a bounded peak."""
    version = data.draw(st.sampled_from([1, 2, 3]))
    body = bytearray(valid_file(n=data.draw(st.sampled_from([1, 40, 300])), version=version)[:-4])
    u32 = st.integers(0, 2 ** 32 - 1)
    for offset, value in data.draw(st.lists(st.sampled_from([(5, u32), (9, u32), (14, u32)]), max_size=3)):
        struct.pack_into("<I", body, offset, data.draw(value))
    for _ in range(data.draw(st.integers(0, 6))):
        position = data.draw(st.integers(0, len(body) - 1))
        body[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(body)))
        body = body[:cut] + data.draw(st.binary(max_size=64))
    result, peak = peak_traced_bytes(bitstream.read, with_crc(body), max_pixels=FUZZ_MAX_PIXELS)
    assert isinstance(result, (GIError, bitstream.DecodedFile))
    assert peak <= FUZZ_PEAK_BYTES, peak


# ----------------------------------------------------------------------------- 2. crafted .npz checkpoints


def _checkpoint(tmp_path, name="m.npz", params=None, lam=None, **meta_changes):
    """A checkpoint written the way :meth:`GaussianImage.save` does, with the given parts replaced."""
    n = 20
    rng = np.random.default_rng(0)
    if params is None:
        params = np.column_stack([rng.uniform(0, 32, (n, 2)), np.full(n, 4.0), np.zeros(n), np.full(n, 4.0),
                                  rng.uniform(0, 1, (n, 3))]).astype(np.float32)
    lam = np.zeros(len(params), np.float32) if lam is None else lam
    meta = dict(format="gi-numba-model", version=1, height=32, width=32, channels=3, iteration=5, seed=0,
                settings={}, psnr=20.0, stats={})
    meta.update(meta_changes)
    meta = {k: v for k, v in meta.items() if v is not _DROP}
    path = tmp_path / name
    np.savez(path, params=params, lam=lam, meta=np.array(json.dumps(meta)))
    return path


_DROP = object()


@pytest.mark.parametrize("changes,message", [
    (dict(height="abc"), "height"),
    (dict(height=0), "height"),
    (dict(width=-5), "width"),
    (dict(height=True), "height"),
    (dict(height=_DROP), "height"),
    (dict(channels=2), "channels"),
    (dict(psnr="good"), "psnr"),
    (dict(settings=[1, 2]), "settings"),
    (dict(stats="x"), "stats"),
    (dict(seed=-1), "seed"),
    (dict(iteration=1.5), "iteration"),
    (dict(settings={"sigmoid_colours": "yes"}), "sigmoid_colours"),
    (dict(height=100_000, width=100_000), "over the limit"),
    (dict(version=_DROP), "version"),
])
def test_bad_metadata_is_one_clear_error(tmp_path, changes, message):
    path = _checkpoint(tmp_path, **changes)
    with pytest.raises(GIError, match=message):
        GaussianImage.load(path)
    for command in (["info", path], ["render", path, "-o", tmp_path / "r.png"]):
        assert_one_error_line(gi(*command))


def test_meta_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.npz"
    np.savez(path, params=np.zeros((1, 8), np.float32), lam=np.zeros(1, np.float32), meta=np.array("[1, 2]"))
    with pytest.raises(GIError, match="not a gi-numba model"):
        GaussianImage.load(path)


@pytest.mark.parametrize("params", [np.array([["a"] * 8]), np.zeros((3, 8), np.complex64),
                                    np.zeros((3, 8), np.int32), np.zeros((3, 7), np.float32)])
def test_parameter_arrays_of_the_wrong_kind(tmp_path, params):
    with pytest.raises(GIError, match="damaged"):
        GaussianImage.load(_checkpoint(tmp_path, params=params, lam=np.zeros(len(params), np.float32)))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_parameters_are_refused(tmp_path, bad):
    path = _checkpoint(tmp_path)
    model = GaussianImage.load(path)
    model.params[3, 2] = bad
    model.save(path)
    with pytest.raises(GIError, match="NaN, infinite"):
        GaussianImage.load(path)
    assert_one_error_line(gi("render", path, "-o", tmp_path / "r.png"), "NaN, infinite")


def test_a_declared_shape_of_two_to_the_forty_allocates_nothing(tmp_path):
    """A ``.npy`` header may claim any shape: it is checked against the member's real size first."""
    good = _checkpoint(tmp_path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, dict(descr="<f4", fortran_order=False, shape=(1 << 40, 8)))
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for name in ("lam.npy", "meta.npy"):
            target.writestr(name, source.read(name))
        target.writestr("params.npy", header.getvalue() + bytes(64))
    error, peak = peak_traced_bytes(GaussianImage.load, path)
    assert isinstance(error, GIError) and "damaged" in str(error) and peak < 2_000_000
    assert_one_error_line(gi("info", path))


def test_too_many_gaussians_for_the_image(tmp_path):
    path = _checkpoint(tmp_path, params=np.zeros((2000, 8), np.float32), height=32, width=32)
    with pytest.raises(GIError, match="over the limit of 1024"):
        GaussianImage.load(path)


def test_pickles_stay_refused(tmp_path):
    path = tmp_path / "pickle.npz"
    np.savez(path, params=np.array([object()], dtype=object), lam=np.zeros(1), meta=np.array("{}"))
    with pytest.raises(GIError):
        GaussianImage.load(path)


# ----------------------------------------------------------------------------- 3. Ctrl-C keeps the work


@pytest.fixture(scope="module")
def tiny_png(tmp_path_factory, small_crop):
    path = tmp_path_factory.mktemp("ctrl-c") / "tiny.png"
    iio.imwrite(path, np.rint(small_crop[:24, :40] * 255).astype(np.uint8))
    return path


def _sigint_as_a_terminal_leaves_it():
    """In the child: SIGINT at its default, as a shell started from a terminal gives it (pytest started in
    the background or under ``nohup`` inherits it ignored, and a child would keep ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def _started(args, ready):
    """``gi args`` in its own process group, given once a line of its stderr contains ``ready``; the group is
    killed on the way out if it still runs (a failing test leaves nothing behind)."""
    process = subprocess.Popen([sys.executable, "-c", "from gi_numba.cli.main import main; main()",
                                *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=_sigint_as_a_terminal_leaves_it)
    try:
        lines = []
        for line in process.stderr:
            lines.append(line)
            if ready in line:
                break
        else:
            process.wait()
            raise AssertionError("never got ready: " + "".join(lines))
        yield process, lines
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def _interrupt(process, lines, timeout=60):
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group); ``(exit code, stderr)``."""
    os.killpg(process.pid, signal.SIGINT)
    rest = process.communicate(timeout=timeout)[1]
    return process.returncode, "".join(lines) + rest


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.7, 1.3])
def test_ctrl_c_during_a_fit_always_saves_the_best_state(tiny_png, tmp_path, delay):
    """SIGINT inside compiled code lost the fit ('returned a result with an exception set') in 4 of 9 tries."""
    output = tmp_path / "f.npz"
    with _started(["fit", tiny_png, "-n", 50, "--iterations", 2_000_000, "-o", output], "PSNR") as (process, lines):
        time.sleep(delay)
        code, stderr = _interrupt(process, lines)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "SystemError" not in stderr
    assert "interrupted after" in stderr and "saved the best state" in stderr
    model = GaussianImage.load(output)
    assert model.stats["interrupted"] and model.n_gaussians <= 50


def test_ctrl_c_stops_a_fit_started_by_a_test_run_that_ignores_sigint(tiny_png, tmp_path):
    """A test run started in the background ignores SIGINT; the fit it starts must still stop on Ctrl-C."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        args = ["fit", tiny_png, "-n", 20, "--iterations", 2_000_000, "-o", tmp_path / "f.npz"]
        with _started(args, "PSNR") as (process, lines):
            code, stderr = _interrupt(process, lines)
    finally:
        signal.signal(signal.SIGINT, before)
    assert code == 130 and "saved the best state" in stderr, stderr


def test_sigint_in_process_stops_the_fit_and_restores_the_handler(small_crop):
    before = signal.getsignal(signal.SIGINT)

    def press_ctrl_c(progress):
        if progress.iteration == 300:
            os.kill(os.getpid(), signal.SIGINT)

    model = gi_numba.fit(small_crop, 60, iterations=5000, progress=press_ctrl_c)
    assert model.stats["interrupted"] and 300 <= model.stats["iterations_run"] < 5000
    assert signal.getsignal(signal.SIGINT) is before


def test_an_encode_interrupted_in_the_warm_up_skips_qat(small_crop):
    def stop(progress):
        if progress.iteration == 200:
            interrupt.request()

    data, report = compress(small_crop, 60, iterations=2000, progress=stop, return_report=True)
    assert report.interrupted and decompress(data).shape == (64, 96, 3)


@pytest.fixture
def three_images(tmp_path, small_crop):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        iio.imwrite(folder / f"img{i}.png", np.rint(small_crop[8 * i:8 * i + 24, :40] * 255).astype(np.uint8))
    return folder


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_a_folder_and_a_rerun_resumes(three_images, tmp_path, workers):
    """--workers 1 swallowed Ctrl-C and recorded the cut image as done; --workers 2 ran on with no summary."""
    out = tmp_path / "out"
    args = ["compress-dir", three_images, out, "-n", 30, "--iterations", 4000, "--workers", workers]
    with _started(args, "[1/3]") as (process, lines):
        code, stderr = _interrupt(process, lines)
    assert code == 130 and "Traceback" not in stderr, stderr
    assert "interrupted:" in stderr and "run the same command again to resume" in stderr
    with open(out / "summary.csv") as handle:
        rows = handle.read().splitlines()[1:]
    done = {p.name for p in out.glob("*.gi")}
    assert 1 <= len(rows) < 3 and all(",ok," in row for row in rows)
    assert {row.split(",")[0].replace(".png", ".gi") for row in rows} <= done  # a worker may finish meanwhile
    rerun = gi(*args, fresh=True)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.glob("*.gi")) == ["img0.gi", "img1.gi", "img2.gi"]


def test_an_interrupted_job_writes_nothing_and_is_not_recorded(three_images, tmp_path, monkeypatch):
    job = jobs_for(three_images, tmp_path, n_gaussians=20, iterations=3000)[0]
    monkeypatch.setattr("gi_numba.batch.encode", _interrupted_encode)
    row = compress_job(job)
    assert row["status"] == "interrupted" and not os.path.exists(job.output)


def _interrupted_encode(source, n, bpp, **options):
    def stop(progress):
        interrupt.request()
    return compress(source, n, progress=stop, return_report=True, **options)


def test_typer_no_longer_swallows_the_interrupted_line(tmp_path, monkeypatch, capsys):
    from gi_numba.cli import main as cli

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "load_image", ctrl_c)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    assert exit_.value.code == 130 and "interrupted" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 4. the user's files


def test_an_output_equal_to_the_input_is_refused(tmp_path, crop_png):
    original = crop_png.read_bytes()
    gi_file = tmp_path / "s.gi"
    gi_file.write_bytes(valid_file())
    model = _checkpoint(tmp_path)
    for args in (["compress", crop_png, "-n", 20, "-o", crop_png], ["fit", crop_png, "-n", 20, "-o", crop_png],
                 ["fit", crop_png, "-n", 20, "--render", tmp_path / "." / "crop.png"],
                 ["decode", gi_file, "-o", gi_file], ["render", model, "-o", model]):
        assert_one_error_line(gi(*args), "is the input file")
    assert crop_png.read_bytes() == original and gi_file.read_bytes() == valid_file()
    link = tmp_path / "alias.png"
    link.symlink_to(crop_png)
    with pytest.raises(GIError, match="is the input file"):
        check_writable(link, inputs=[crop_png])


def test_images_sharing_a_name_get_their_own_outputs(tmp_path, small_crop):
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = np.rint(small_crop[:24, :40] * 255).astype(np.uint8)
    iio.imwrite(folder / "img0.png", pixels)
    iio.imwrite(folder / "img0.jpg", pixels[::-1], quality=95)
    iio.imwrite(folder / "other.png", pixels[:, ::-1])
    rows = compress_dir(folder, tmp_path / "out", n_gaussians=20, iterations=300)
    names = {row["file"]: row for row in rows}
    assert sorted(p.name for p in (tmp_path / "out").glob("*.gi")) == ["img0.jpg.gi", "img0.png.gi", "other.gi"]
    for source, output in (("img0.png", "img0.png.gi"), ("img0.jpg", "img0.jpg.gi")):
        decoded = decompress((tmp_path / "out" / output).read_bytes())
        assert names[source]["psnr"] == round(gi_numba.psnr(decoded, load_image(folder / source)[0]), 4)


def test_outputs_that_would_still_coincide_are_refused_before_any_work(tmp_path):
    from pathlib import Path
    with pytest.raises(GIError, match="a.png and a.png.jpg would both be written to a.png.gi"):
        output_names([Path("a.png"), Path("a.jpg"), Path("a.png.jpg")])


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc, where nobody can create files")
def test_an_unwritable_folder_fails_before_the_fit_even_as_root(crop_png):
    """Permission bits let root pass; only creating a file there tells."""
    run = gi("compress", crop_png, "-n", 20, "--iterations", 100_000, "-o", "/proc/out.gi")
    assert_one_error_line(run, "cannot write /proc/out.gi")
    with pytest.raises(GIError, match="cannot write"):
        check_writable("/proc/summary.csv")


# ----------------------------------------------------------------------------- 5. images


def test_cmyk_jpeg_is_converted_as_pillow_does(tmp_path, small_crop):
    """CMYK JPEGs were fitted with inverted colours and K announced as an alpha channel."""
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(np.rint(small_crop * 255).astype(np.uint8)).convert("CMYK").save(path, quality=95)
    image, info = load_image(path)
    expected = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
    assert np.array_equal(image, expected)
    assert any("CMYK" in n for n in info.notices) and not any("alpha" in n for n in info.notices)
    assert gi_numba.psnr(image, small_crop) > 25


def test_multi_page_tiff_gives_its_first_page(tmp_path, small_crop):
    path = tmp_path / "pages.tif"
    pages = [Image.fromarray(np.rint(small_crop * 255).astype(np.uint8)) for _ in range(3)]
    pages[1:] = [Image.fromarray(np.zeros((64, 96, 3), np.uint8))] * 2
    pages[0].save(path, save_all=True, append_images=pages[1:])
    image, _ = load_image(path)
    assert image.shape == (64, 96, 3) and gi_numba.psnr(image, small_crop) > 40


def _png16_header_only(path, width, height):
    """A 16-bit RGB PNG whose header claims ``width x height`` and whose data is a few bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1000)))
                     + chunk(b"IEND", b""))


def test_sixteen_bit_png_obeys_the_pixel_limit(tmp_path):
    """A 1.1 MB 14000x14000 16-bit PNG cost a minute and 9 GB, then a traceback."""
    path = tmp_path / "big16.png"
    _png16_header_only(path, 14000, 14000)
    error, peak = peak_traced_bytes(load_image, path)
    assert isinstance(error, GIError) and "over the limit" in str(error) and peak < 1_000_000
    assert_one_error_line(gi("fit", path, "-n", 10), "over the limit")


def test_eight_bit_images_obey_the_pixel_limit(crop_png):
    with pytest.raises(GIError, match="96x64 .6144 pixels. is over the limit of 6000"):
        load_image(crop_png, max_pixels=6000)
    assert load_image(crop_png, max_pixels=6144)[0].shape == (64, 96, 3)


def test_a_huge_scale_is_a_clear_error(tmp_path):
    model = _checkpoint(tmp_path)
    assert_one_error_line(gi("render", model, "-o", tmp_path / "x.png", "--scale", 1e6), "over the limit")
    gi_file = tmp_path / "x.gi"
    gi_file.write_bytes(valid_file())
    assert_one_error_line(gi("decode", gi_file, "-o", tmp_path / "x.png", "--scale", 1e6), "over the limit")


def test_out_of_memory_is_one_line(crop_png, monkeypatch, capsys):
    from gi_numba.cli import main as cli

    def no_memory(*args):
        raise MemoryError
    monkeypatch.setattr(cli, "ms_ssim", no_memory)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", str(crop_png), str(crop_png)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("error: out of memory")


def test_out_of_memory_in_a_folder_is_an_error_row(three_images, tmp_path, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr("gi_numba.batch.encode", no_memory)
    rows = compress_dir(three_images, tmp_path / "out", n_gaussians=10, iterations=10)
    assert [row["status"] for row in rows] == ["error"] * 3 and rows[0]["error"] == "out of memory"


# ----------------------------------------------------------------------------- 6. arguments


@pytest.mark.parametrize("args,fragment", [
    (["fit", "{crop_png}", "-n", 10, "--seed", -1], "--seed"),
    (["fit", "{crop_png}", "-n", 0], "-n"),
    (["fit", "{crop_png}", "-n", 10, "--iterations", 0], "--iterations"),
    (["compress", "{crop_png}", "--bpp", "inf"], "--bpp"),
    (["compress", "{crop_png}", "--bpp", "nan"], "--bpp"),
    (["compress", "{crop_png}", "--bpp", -1], "--bpp"),
    (["compress", "{crop_png}", "-n", 10, "--qat-iterations", -5], "--qat-iterations"),
    (["compress", "{crop_png}", "-n", 10, "--colour-bits", 17], "--colour-bits"),
    (["render", "{model}", "-o", "{tmp}/x.png", "--scale", "inf"], "scale"),
    (["render", "{model}", "-o", "{tmp}/x.png", "--scale", "nan"], "scale"),
    (["render", "{model}", "-o", "{tmp}/x.png", "--width", 0], "width"),
    (["decode", "{gi}", "-o", "{tmp}/x.png", "--scale", "inf"], "scale"),
    (["decode", "{gi}", "-o", "{tmp}/x.png", "--scale", -2], "scale"),
    (["compress-dir", "{tmp}", "{tmp}/out", "--bpp", "inf"], "--bpp"),
    (["compress-dir", "{tmp}", "{tmp}/out", "-n", 10, "--seed", -3], "--seed"),
    (["info", "{gi}", "--max-pixels", 0], "--max-pixels"),
    (["bench", "ablation", "{crop_png}", "--seed", -1, "--csv", "{tmp}/a.csv"], "--seed"),
    (["bench", "represent", "{crop_png}", "--iterations", 0, "--csv", "{tmp}/r.csv"], "--iterations"),
])
def test_numeric_options_out_of_range(tmp_path, crop_png, args, fragment):
    gi_file = tmp_path / "x.gi"
    gi_file.write_bytes(valid_file())
    names = dict(crop_png=crop_png, model=_checkpoint(tmp_path), gi=gi_file, tmp=tmp_path)
    run = gi(*[str(a).format(**names) for a in args])
    assert_one_error_line(run, fragment)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("call,fragment", [
    (lambda image: gi_numba.fit(image, 10, iterations=10, seed=-1), "seed"),
    (lambda image: gi_numba.fit(image, 10, iterations=math.inf), "iterations"),
    (lambda image: gi_numba.fit(image, 10, iterations=10, lr=math.nan), "learning rate"),
    (lambda image: gi_numba.fit(image, 10.5, iterations=10), "number of Gaussians"),
    (lambda image: compress(image, 10, iterations=10, qat_iterations=-1), "QAT iterations"),
    (lambda image: compress(image, 10, iterations=10, bits=dict(colour=math.inf)), "bit depth"),
    (lambda image: compress_to_rate(image, math.inf, iterations=10), "bpp"),
    (lambda image: GaussianImage(np.zeros((1, 8), np.float32), np.zeros(1, np.float32), 4, 4).render(scale=math.inf),
     "scale"),
])
def test_api_arguments_out_of_range(small_crop, call, fragment):
    with pytest.raises(GIError, match=fragment):
        call(small_crop)


def test_no_qat_means_post_training_quantisation(small_crop):
    """--qat-iterations 0 exited 130 with no message; it now quantises the warm-up model as it is."""
    data, report = compress(small_crop, 60, iterations=500, qat_iterations=0, return_report=True)
    warm = gi_numba.fit(small_crop, 60, iterations=500, sigmoid_colours=True)
    assert not report.interrupted and decompress(data).shape == (64, 96, 3)
    assert warm.psnr - 0.5 < report.psnr <= warm.psnr + 0.01


def test_broken_and_looping_links_are_announced(three_images, tmp_path):
    (three_images / "gone.png").symlink_to(tmp_path / "missing.png")
    (three_images / "loop.png").symlink_to(three_images / "loop.png")
    run = gi("compress-dir", three_images, tmp_path / "out", "-n", 10, "--iterations", 20, "--workers", 1)
    assert run.returncode == 0, run.stderr
    assert "skipping" in run.stderr and "gone.png" in run.stderr and "loop.png" in run.stderr


def test_default_limit_is_an_8192_square():
    assert DEFAULT_MAX_PIXELS == 8192 * 8192
