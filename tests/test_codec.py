"""The codec: quantiser gradients, bit-exact bitstream round trips, corrupt files, end to end."""

from dataclasses import replace
from pathlib import Path

import imageio.v3
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gi_numba
from conftest import random_model
from gi_numba import bitstream
from gi_numba.bitstream import CorruptFile
from gi_numba.codec import compress, compress_to_rate, decoded_model, decompress
from gi_numba.errors import GIError
from gi_numba.bitstream import FORMATS, container, models
from gi_numba.bitstream.framing import COMPACT, INDEXED
from gi_numba.bitstream.models import MODELS, Stream
from gi_numba.bitstream.varint import pack_bits, read_varints, varints
from gi_numba.coding import LOG_EPS, MAX_CORRELATION, YCOCG_TO_RGB
from gi_numba.quantize import (QuantizedGaussians, QuantizedMap, _attribute_values, dequantize, initial_quantizers,
                               log_forward, log_init, lsq_backward, lsq_forward, quantize)
from gi_numba.raster.cpu_pipeline import CpuRasterizer
from gi_numba.raster.reference import reference_gradients, reference_loss


@pytest.fixture(scope="module")
def encoded(small_crop):
    """A real encoding of the 96x64 crop (short schedule) and its report."""
    return compress(small_crop, 200, iterations=1500, qat_iterations=300, return_report=True)


def test_lsq_gradients_match_finite_differences_of_the_continuous_part():
    """Away from rounding steps the STE gradients are the exact derivatives of ``s*x + beta`` pieces."""
    rng = np.random.default_rng(0)
    values = rng.uniform(-1, 3, (50, 2))
    step, offset, bits = np.array([0.05, 0.08]), np.array([0.0, -0.5]), 5
    codes, _, scaled = lsq_forward(values, step, offset, bits)
    weights = rng.normal(size=values.shape)
    g_values, g_step, g_offset = lsq_backward(weights, codes, scaled, bits)

    inside = (scaled >= -0.5) & (scaled <= 2 ** bits - 0.5)
    frozen = codes - scaled  # the rounding offset, held constant by the straight-through estimator

    def continuous(v, s, b):
        """Inside the range ``v^ = s (x + frozen) + beta = v + s frozen``; clamped, ``v^ = s q + beta``."""
        return np.where(inside, v + s * frozen, s * codes + b)

    h = 1e-6
    loss = lambda v, s, b: np.sum(weights * continuous(v, s, b))  # noqa: E731
    num_v = (loss(values + h, step, offset) - loss(values - h, step, offset)) / (2 * h)
    assert np.allclose(g_values.sum(), num_v, rtol=1e-5)
    for i in range(2):
        e = np.eye(2)[i] * h
        num_s = (loss(values, step + e, offset) - loss(values, step - e, offset)) / (2 * h)
        num_b = (loss(values, step, offset + e) - loss(values, step, offset - e)) / (2 * h)
        assert g_step[i] == pytest.approx(num_s, rel=1e-5, abs=1e-9)
        assert g_offset[i] == pytest.approx(num_b, rel=1e-5, abs=1e-9)


def _ste_surrogate(result, version, step_shift=None):
    """The render parameters as a smooth function of the trained ones, rounding frozen at ``result``'s codes.

    This is what the straight-through estimator differentiates: each LSQ+
    attribute drawn as ``v + s (q - scaled)`` inside its range and ``s q +
    beta`` where clamped, each log-quantised one as ``exp(ln|v| + (q s +
    beta - ln|v0|))``; ``step_shift`` (name, "step" or "offset", index, h)
    moves one learned quantiser parameter.
    """
    q = result.quantizers
    coding = FORMATS[version].coding

    def drawn(params, lam):
        inputs = _attribute_values(params.astype(np.float64), lam, coding)
        values = {}
        for a in coding.attributes:
            step = np.array(getattr(q, f"{a.name}_step"), np.float64)
            offset = np.array(getattr(q, f"{a.name}_offset"), np.float64)
            if step_shift is not None and step_shift[0] == a.name:
                (step if step_shift[1] == "step" else offset)[step_shift[2]] += step_shift[3]
            codes = result.codes[a.name]
            if a.kind == "lsq":
                scaled = result.scaled[a.name]
                inside = (scaled >= -0.5) & (scaled <= 2 ** q.bits[a.name] - 0.5)
                values[a.name] = np.where(inside, inputs[a.name] + step * (codes - scaled), step * codes + offset)
            else:
                frozen = codes * step + offset - np.log(np.abs(result.inputs[a.name]) + LOG_EPS)
                values[a.name] = np.exp(np.log(np.abs(inputs[a.name]) + LOG_EPS) + frozen)
        return coding.drawn(values, np.float64)
    return drawn


@pytest.mark.parametrize("version", [1, 2])
def test_quantized_map_gradients_match_finite_differences_through_the_ste(version):
    """QAT backward equals central differences (float64) of the render with rounding frozen at its codes.

    For version 2 this checks the chain rule through the correlation
    ``tanh(t) sqrt(a c)`` and YCoCg as well as through the quantisers.
    """
    params, lam = random_model(3, n=15, height=16, width=24)
    target = np.random.default_rng(4).uniform(size=(3, 16, 24))
    mapping = QuantizedMap(initial_quantizers(params, lam, version=version))
    drawn, drawn_lam, result = mapping.forward(params, lam)
    grads, _ = mapping.backward(reference_gradients(drawn.astype(np.float64), drawn_lam, target), result)
    surrogate = _ste_surrogate(result, version)
    assert np.allclose(surrogate(params, lam), drawn, rtol=1e-5, atol=1e-5)
    base, h = params.astype(np.float64), 1e-6
    for i in (0, 3, 7, 11):
        for j in range(8):
            shift = np.zeros_like(base)
            shift[i, j] = h
            numeric = (reference_loss(surrogate(base + shift, lam), drawn_lam, target)
                       - reference_loss(surrogate(base - shift, lam), drawn_lam, target)) / (2 * h)
            assert grads[i, j] == pytest.approx(numeric, rel=1e-4, abs=1e-7), (i, j)


def test_log_quantiser_covers_the_range():
    values = np.exp(np.random.default_rng(3).uniform(-3, 5, (100, 2)))
    step, offset = log_init(values, 10)
    codes, approx = log_forward(values, step, offset, 10)
    assert codes.min() == 0 and codes.max() == 1023
    assert np.all(np.abs(np.log(approx) - np.log(values)) <= step / 2 + 1e-6)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_bitstream_round_trip_is_bit_exact(version):
    params, lam = random_model()
    codes = quantize(params, lam, initial_quantizers(params, lam, version=version))
    data, streams = bitstream.write(codes, 64, 96, 3)
    parsed = bitstream.read(data)
    assert data[4] == version and parsed.codes.quantizers.version == version
    expected = codes.sorted_by_position()
    for name in ("position", "variance", "covariance", "colour"):
        assert np.array_equal(getattr(parsed.codes, name), getattr(expected, name)), name
    assert np.array_equal(dequantize(parsed.codes), dequantize(expected))
    assert (parsed.height, parsed.width, parsed.channels) == (64, 96, 3)
    assert sum(s.nbytes for s in streams) + parsed.header_bytes == len(data)


def _decoded_record(version, model, symbols, nbits):
    """The symbols of a stream coded with ``model``, framed as a file of ``version`` frames it, and read back."""
    fmt = FORMATS[version]
    params, payload = model.encode(Stream(symbols, nbits), fmt.framing)
    record = fmt.framing.record(0, model, params, payload)
    model_read, fields, payload_read, end = fmt.framing.read_record(record, 0, 0, nbits, fmt.models)
    assert (model_read, payload_read, end) == (model, payload, len(record))
    return model.decode(fields, payload, symbols.size, nbits)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_entropy_model_round_trips(version):
    rng = np.random.default_rng(4)
    for symbols, nbits in [(rng.integers(0, 4096, 500), 12), (np.clip(rng.laplace(30, 3, 500), 0, 63), 6),
                           (rng.choice([0, 5, 9], 500), 4), (np.full(10, 7), 3)]:
        symbols = symbols.astype(np.int64)
        for model in FORMATS[version].models:
            assert np.array_equal(_decoded_record(version, model, symbols, nbits), symbols), model.name


def test_the_models_are_registered_by_the_ids_their_records_name():
    assert {model.id: model.name for model in MODELS.values()} == {
        0: "fixed", 1: "laplace", 2: "histogram", 3: "log-histogram"}
    assert all(model is MODELS[model.id] for fmt in FORMATS.values() for model in fmt.models)


def test_log_histogram_weights_are_the_counts_rounded_in_the_log_domain():
    """A level's weight is ``256 x 2^((level - 1) / levels per octave)`` to within the table's rounding, the
    level of a count is its rounded ``log2`` at that precision, and a symbol that never occurs gets weight 0."""
    counts = np.array([0, 1, 2, 3, 5, 100, 4096, 2 ** 26])
    for per_octave in models.LOG_HISTOGRAM.LEVELS_PER_OCTAVE:
        levels = models.log_histogram_levels(counts, per_octave)
        weights = models.LOG_HISTOGRAM.weights(levels, per_octave)
        assert weights[0] == 0 and levels[0] == 0
        exact = 256 * 2.0 ** ((levels[1:] - 1) / per_octave)
        assert np.allclose(weights[1:], exact, rtol=0.002)
        assert np.all(np.abs(np.log2(weights[1:] / 256) - np.log2(counts[1:])) <= 0.5 / per_octave + 0.003)


def test_a_log_histogram_codes_the_symbols_almost_as_well_as_their_exact_histogram():
    """At its cheapest precision the log-histogram's symbols cost at most 2% more than under the exact
    histogram, and its parameters and symbols together less than the exact histogram's."""
    rng = np.random.default_rng(8)
    for symbols in (np.clip(np.rint(rng.laplace(30, 4, 1000)), 0, 63), rng.integers(0, 50, 3000),
                    np.clip(np.rint(rng.normal(20, 6, 300)), 0, 63)):
        stream = Stream(symbols.astype(np.int64), 6)
        assert models.LOG_HISTOGRAM.information_bits(stream) <= 1.02 * models.information_bits(stream.counts)
        assert (models.LOG_HISTOGRAM.estimated_bits(stream, COMPACT)
                < models.HISTOGRAM.estimated_bits(stream, INDEXED))


def test_version_3_stores_the_same_codes_as_version_2_in_fewer_bytes():
    params, lam = random_model(9, n=600)
    codes = quantize(params, lam, initial_quantizers(params, lam, version=2))
    as_v3 = QuantizedGaussians(replace(codes.quantizers, version=3), codes.position, codes.variance,
                               codes.covariance, codes.colour)
    v2, _ = bitstream.write(codes, 64, 96, 3)
    v3, infos = bitstream.write(as_v3, 64, 96, 3)
    assert v3[4] == 3 and len(v3) < len(v2)
    assert {info.model for info in infos} <= {"fixed", "laplace", "log-histogram"}
    for name in ("position", "variance", "covariance", "colour"):
        assert np.array_equal(getattr(bitstream.read(v3).codes, name), getattr(bitstream.read(v2).codes, name))
    assert np.array_equal(decompress(v3), decompress(v2))


def test_a_stream_shorter_than_its_histograms_entropy_decodes():
    """The ANS coder starts from state 0, where the alphabet's first symbol costs nothing: a stream that
    ends in it is shorter than its entropy (kodim16's colour at 1 000 Gaussians: 4 032 bits for 4 250),
    and a valid file (the reader once refused it as too short)."""
    rng = np.random.default_rng(6)
    symbols = np.concatenate([rng.integers(0, 40, 300), np.zeros(200, np.int64)])
    _, payload = models.HISTOGRAM.encode(Stream(symbols, 6), INDEXED)
    assert 8 * len(payload) < models.information_bits(np.bincount(symbols)) - 200
    assert np.array_equal(_decoded_record(2, models.HISTOGRAM, symbols, 6), symbols)


def test_histogram_counts_read_back_and_malformed_ones_are_refused():
    rng = np.random.default_rng(5)
    for n in (1, 2, 17, 300):
        counts = rng.integers(0, 2 ** rng.integers(1, 29), n)
        counts[0] = 2 ** 28 - 1  # four continuation bytes and a last one
        assert np.array_equal(read_varints(varints(counts), n, counts.max()), counts)
    for data, n, largest in [(b"", 1, 9), (b"\x80", 1, 9), (b"\x05\x86", 2, 9), (b"\x05", 2, 9),
                             (b"\x05\x06", 1, 9), (b"\xff\xff\xff\xff\xff\x01", 1, 2 ** 40), (b"\x0a", 1, 9)]:
        with pytest.raises(CorruptFile, match="bad entropy model"):
            read_varints(data, n, largest)


@pytest.mark.parametrize("nbits", range(1, 17))
def test_fixed_length_codes_unpack_at_every_depth(nbits):
    rng = np.random.default_rng(nbits)
    for count in (0, 1, 7, 8, 9, 1001):
        symbols = rng.integers(0, 2 ** nbits, count).astype(np.int64)
        symbols[:1] = 2 ** nbits - 1  # the largest code, all ones
        payload = pack_bits(symbols, nbits)
        assert np.array_equal(models.FIXED.decode((), payload, count, nbits), symbols)


def test_version_2_takes_the_laplace_model_only_where_it_is_five_percent_smaller(monkeypatch):
    """The writer's choice among the models measured on a stream: the smallest, a Laplace one in version 2
    only if it beats the others by 5% (it decodes several times slower); a reader decodes either choice."""
    params, lam = random_model(3, n=2000)
    params[:, 5:8] = np.random.default_rng(3).laplace(0, 1.0, (2000, 3))  # peaked colours: Laplace-shaped codes
    codes = quantize(params, lam, initial_quantizers(params, lam, version=2))
    data, infos = bitstream.write(codes, 64, 96, 3)
    monkeypatch.setitem(FORMATS, 2, replace(FORMATS[2], laplace_margin=0.0))
    smallest, smallest_infos = bitstream.write(codes, 64, 96, 3)
    chosen = [(a.model, b.model, a.nbytes, b.nbytes) for a, b in zip(infos, smallest_infos)]
    assert any(with_margin != without for with_margin, without, _, _ in chosen)  # the margin decided a stream
    for with_margin, without, size, smaller in chosen:
        assert with_margin == without or (without == "laplace" and smaller > 0.95 * size - 8)
    assert np.array_equal(dequantize(bitstream.read(data).codes), dequantize(bitstream.read(smallest).codes))


def test_version_1_drops_gaussians_that_are_not_positive_definite():
    params, lam = random_model(n=50)
    params[0, 3] = 1e3  # |b| far above sqrt(ac)
    codes = quantize(params, lam, initial_quantizers(params, lam))
    assert codes.n_gaussians == 49


def test_version_2_codes_the_covariance_term_as_a_correlation_and_colour_in_ycocg():
    """Every decoded v2 covariance is positive definite, a small Gaussian's ``b'`` is coded as finely as a
    large one's (relative to ``sqrt(a'c')``), colours are within half a step of each of Y, Co, Cg, and a
    trained covariance that is not positive definite is drawn at the largest correlation, in QAT's render
    and in the file alike."""
    params, lam = random_model(6, n=400)
    params[:200, 2:5] *= 0.01  # a hundredth of the others' size
    params[7, 3] = 2.0 * np.sqrt((params[7, 2] + lam[7]) * (params[7, 4] + lam[7]))
    mapping = QuantizedMap(initial_quantizers(params, lam, version=2))
    codes = quantize(params, lam, mapping.snapshot())
    decoded = dequantize(codes).astype(np.float64)
    a, b, c = decoded[:, 2], decoded[:, 3], decoded[:, 4]
    assert codes.n_gaussians == 400 and np.all(a * c - b * b > 0)
    assert FORMATS[2].coding.stream_names == ("dy", "x", "a", "c", "corr", "Y", "Co", "Cg")
    truth = _attribute_values(params.astype(np.float64), lam, FORMATS[1].coding)["covariance"][:, 0]
    relative_error = np.abs(b - truth) / np.sqrt(a * c)
    relative_error[7] = 0.0
    q = codes.quantizers  # half a step of atanh, and the variances' half steps through sqrt(a c):
    bound = q.covariance_step[0] / 2 + np.expm1(q.variance_step.sum() / 4)
    assert relative_error[:200].max() <= bound and relative_error[200:].max() <= bound
    assert b[7] / np.sqrt(a[7] * c[7]) == pytest.approx(MAX_CORRELATION, abs=0.03)
    drawn, _, _ = mapping.forward(params, lam)
    np.testing.assert_allclose(drawn, dequantize(codes), rtol=1e-6, atol=1e-6)
    rgb_error = np.abs(dequantize(codes)[:, 5:8] - 1 / (1 + np.exp(-params[:, 5:8].astype(np.float64))))
    ycocg_steps = codes.quantizers.colour_step
    assert np.all(rgb_error <= np.abs(YCOCG_TO_RGB) @ ycocg_steps / 2 + 1e-6)  # half a step of each of Y, Co, Cg


@pytest.mark.parametrize("version", [1, 2, 3])
def test_decoded_image_equals_the_training_side_quantised_render(version):
    params, lam = random_model(5)
    mapping = QuantizedMap(initial_quantizers(params, lam, version=version))
    drawn, drawn_lam, _ = mapping.forward(params, lam)
    training_side = CpuRasterizer(64, 96).render(drawn, drawn_lam)
    data, _ = bitstream.write(quantize(params, lam, mapping.snapshot()), 64, 96, 3)
    decoded = decompress(data).transpose(2, 0, 1)
    np.testing.assert_allclose(decoded, training_side, atol=1e-5)  # same Gaussians, summed in another order


#: A version-1 file written by the encoder before version 2 existed (paper recipe, the small crop, 120
#: Gaussians), and its decoding then, as 8-bit PNG.
V1_FILE = Path(__file__).parent / "data" / "crop-v1.gi"


def test_version_1_files_still_decode_to_the_same_image():
    data = V1_FILE.read_bytes()
    parsed = bitstream.read(data)
    assert data[4] == 1 and parsed.codes.quantizers.version == 1 and parsed.codes.n_gaussians == 120
    assert [s.name for s in parsed.streams] == ["dy", "x", "a", "c", "b", "red", "green", "blue"]
    then = imageio.v3.imread(V1_FILE.with_suffix(".png")).astype(np.int16)
    now = np.clip(np.rint(decompress(data) * 255), 0, 255).astype(np.int16)
    assert np.abs(now - then).max() <= 1  # a float32 sum in another order may round the other way


#: A version-2 file written by the default encoder before version 3 existed (the small crop, 120 Gaussians, 600
#: iterations of which 100 QAT), and its decoding then, as 8-bit PNG.
V2_FILE = Path(__file__).parent / "data" / "crop-v2.gi"


def test_version_2_files_still_decode_to_the_same_image_and_rewrite_to_the_same_bytes():
    data = V2_FILE.read_bytes()
    parsed = bitstream.read(data)
    assert data[4] == 2 and parsed.codes.quantizers.version == 2
    assert [s.name for s in parsed.streams] == ["dy", "x", "a", "c", "corr", "Y", "Co", "Cg"]
    then = imageio.v3.imread(V2_FILE.with_suffix(".png")).astype(np.int16)
    now = np.clip(np.rint(decompress(data) * 255), 0, 255).astype(np.int16)
    assert np.abs(now - then).max() <= 1
    assert bitstream.write(parsed.codes, parsed.height, parsed.width, parsed.channels)[0] == data


#: A version-3 file of the default encoder (the small crop, 150 Gaussians asked for, 1 500 iterations) using
#: all three of its models, and its decoding then, as 8-bit PNG.
V3_FILE = Path(__file__).parent / "data" / "crop-v3.gi"


def test_version_3_files_still_decode_to_the_same_image_and_rewrite_to_the_same_bytes():
    data = V3_FILE.read_bytes()
    parsed = bitstream.read(data)
    assert data[4] == 3 and parsed.codes.quantizers.version == 3 and parsed.codes.n_gaussians == 147
    assert {s.model for s in parsed.streams} == {"fixed", "laplace", "log-histogram"}
    then = imageio.v3.imread(V3_FILE.with_suffix(".png")).astype(np.int16)
    now = np.clip(np.rint(decompress(data) * 255), 0, 255).astype(np.int16)
    assert np.abs(now - then).max() <= 1
    assert bitstream.write(parsed.codes, parsed.height, parsed.width, parsed.channels)[0] == data


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_damage_to_a_version_1_file_never_crashes_the_decoder(data):
    original = bytearray(V1_FILE.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(original) - 1))
        original[i] ^= 1 << data.draw(st.integers(0, 7))
    try:
        decoded_model(bytes(original))
    except CorruptFile:
        pass


def test_end_to_end_compress_and_decode(encoded, small_crop):
    data, report = encoded
    assert report.nbytes == len(data) and report.bpp == pytest.approx(8 * len(data) / (64 * 96))
    decoded = decompress(data)
    assert gi_numba.psnr(decoded, small_crop) == pytest.approx(report.psnr)
    assert report.psnr > 24  # measured 27.5 dB when written
    assert report.n_gaussians <= 200 and sum(s.nbytes for s in report.streams) < len(data)


def test_decoding_is_deterministic_across_runs_and_threads(encoded):
    data, _ = encoded
    before = numba.get_num_threads()
    try:
        images = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS), 1):
            numba.set_num_threads(threads)
            images.append(decompress(data))
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(images[0], image) for image in images[1:])


def test_a_default_encode_is_the_same_file_on_one_and_two_threads(small_crop):
    """The default encoder (version 3, QAT with its rate term, depth choice, RDOQ) writes the same bytes
    whatever the thread count: training's gradient sums and RDOQ are thread-independent."""
    before = numba.get_num_threads()
    try:
        files = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            files.append(compress(small_crop, 60, iterations=300, qat_iterations=60))
    finally:
        numba.set_num_threads(before)
    assert files[0] == files[1] and files[0][4] == 3


def test_decode_at_another_scale(encoded):
    assert decompress(encoded[0], scale=2).shape == (128, 192, 3)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: b"JUNK" + d[4:], "wrong magic"),
    (lambda d: d[:4] + bytes([9]) + d[5:], "version 9"),
    (lambda d: d[:40] + bytes([d[40] ^ 0x10]) + d[41:], "checksum"),
    (lambda d: d[:len(d) // 2], "checksum|truncated"),
    (lambda d: d[:10], "truncated"),
    (lambda d: b"", "wrong magic"),
])
def test_corrupt_files_raise_one_clear_error(encoded, mutate, message):
    with pytest.raises(CorruptFile, match=message):
        decompress(mutate(encoded[0]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_never_crashes_the_decoder(encoded, data):
    original = bytearray(encoded[0])
    if data.draw(st.booleans()):
        damaged = bytes(original[:data.draw(st.integers(0, len(original) - 1))])
    else:
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(original) - 1))
            original[i] ^= 1 << data.draw(st.integers(0, 7))
        damaged = bytes(original)
    try:
        decoded_model(damaged)
    except CorruptFile:
        pass


def test_parser_rejects_inconsistent_content_with_a_valid_checksum(encoded):
    """Damage behind a recomputed CRC must still be reported as a corrupt file, not a crash."""
    import zlib
    body = bytearray(encoded[0][:-4])
    body[container.OVERHEAD_BYTES - 4 + 2] ^= 0xFF  # a byte of the first stream's model parameters
    data = bytes(body) + zlib.crc32(bytes(body)).to_bytes(4, "little")
    with pytest.raises(CorruptFile):
        decompress(data)


def test_rate_target_lands_within_ten_percent_after_one_short_pilot(small_crop, monkeypatch):
    from gi_numba import rate_control
    calls = []

    def counted(image, n, **options):
        calls.append(options["iterations"])
        return compress(image, n, **options)
    monkeypatch.setattr(rate_control, "compress", counted)
    data, report = compress_to_rate(small_crop, 2.0, iterations=2000, qat_iterations=100)
    assert abs(report.bpp - 2.0) <= 0.2 and report.bpp == pytest.approx(8 * len(data) / (64 * 96))
    assert calls[0] == 200 and calls[1:] == [2000] * report.encodes and report.encodes <= 2


def test_impossible_rate_and_bits(small_crop):
    with pytest.raises(GIError, match="outside"):
        compress_to_rate(small_crop, 500.0, iterations=10)
    with pytest.raises(GIError, match="between 1 and 16"):
        compress(small_crop, 10, iterations=10, bits={"colour": 0})


@pytest.mark.parametrize("version", [1, 2])
def test_qat_quantiser_gradients_match_finite_differences(version):
    """The learned steps and offsets get the gradient of the loss through the map, rounding offsets frozen (STE).

    Central differences of the float64 reference loss of the surrogate render
    (:func:`_ste_surrogate`) in one quantiser parameter at a time, the
    variances' log range (not learned) held.
    """
    params, lam = random_model(3, n=15, height=16, width=24)
    target = np.random.default_rng(4).uniform(size=(3, 16, 24))
    mapping = QuantizedMap(initial_quantizers(params, lam, version=version))
    drawn, drawn_lam, result = mapping.forward(params, lam)
    _, own = mapping.backward(reference_gradients(drawn.astype(np.float64), drawn_lam, target), result)
    h = 1e-7
    for name in ("position", "covariance", "colour"):
        for part in ("step", "offset"):
            for index, analytic in enumerate(np.ravel(own[f"{name}_{part}"])):
                up, down = (reference_loss(_ste_surrogate(result, version, (name, part, index, shift))(params, lam),
                                           drawn_lam, target) for shift in (h, -h))
                assert analytic == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-9), (name, part, index)


def test_qat_beats_post_training_quantisation_at_equal_bits_and_iterations(small_crop):
    """Why QAT exists (§6): 1 800 iterations whose last 300 train with quantisation decode better than 1 800
    without, with the paper recipe (measured 24.54 against 24.24 dB).

    The default recipe's one-pass QAT (the last tenth of one schedule)
    learns the version-2 coding (here without its rate term, ``lmbda=0``); there it is about even with
    post-training quantisation at equal rate (this crop: 27.17 dB at 1 175 bytes against
    27.31 dB at 1 202 bytes; benchmarks/RESULTS.md has Kodak), so only a
    bound is pinned.
    """
    _, ptq = compress(small_crop, 150, iterations=1800, qat_iterations=0, recipe="paper", return_report=True)
    _, qat = compress(small_crop, 150, iterations=1500, qat_iterations=300, recipe="paper", return_report=True)
    assert qat.psnr > ptq.psnr + 0.15 and qat.nbytes <= ptq.nbytes
    _, ptq = compress(small_crop, 150, iterations=1800, qat_iterations=0, return_report=True)
    _, qat = compress(small_crop, 150, iterations=1800, qat_iterations=300, lmbda=0, return_report=True)
    assert qat.psnr > ptq.psnr - 0.25 and qat.nbytes <= ptq.nbytes


def test_psnr_target_gives_the_smallest_file_found_that_reaches_it(small_crop, monkeypatch):
    """``--psnr``: of the encodes tried (at most six), the smallest file at or above the target."""
    from gi_numba import codec, rate_control
    tried = []

    def recorded(image, n, **options):
        data, report = compress(image, n, **options)
        tried.append((n, len(data), report.psnr))
        return data, report
    monkeypatch.setattr(rate_control, "compress", recorded)
    data, report = codec.compress_to_psnr(small_crop, 22.0, iterations=400, qat_iterations=50)
    assert report.psnr >= 22.0 and len(tried) <= 6
    assert len(data) == min(size for _, size, psnr in tried if psnr >= 22.0)
    assert any(psnr < 22.0 for _, _, psnr in tried)  # the search went low enough to miss
    unreachable, best = codec.compress_to_psnr(small_crop, 80.0, iterations=100, qat_iterations=10, max_tries=2)
    assert best.psnr < 80.0 and len(unreachable) == best.nbytes


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(height=st.integers(8, 40), width=st.integers(8, 40), n=st.integers(1, 40), iterations=st.integers(20, 200),
       recipe=st.sampled_from(["paper", "fast"]), seed=st.integers(0, 2 ** 31), grey=st.booleans())
def test_an_encode_reports_what_its_file_decodes_to(height, width, n, iterations, recipe, seed, grey):
    """On random small images and options: the report's bytes, bpp and PSNR are the file's and its decoding's."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width) if grey else (height, width, 3)).astype(np.uint8)
    n = min(n, height * width)
    data, report = compress(image, n, iterations=iterations, seed=seed, recipe=recipe, return_report=True)
    decoded = decompress(data)
    target = np.repeat(image[..., None], 3, axis=2) if grey else image
    assert report.nbytes == len(data) and report.bpp == 8.0 * len(data) / (height * width)
    assert report.psnr == gi_numba.psnr(decoded, target.astype(np.float32) / 255)
    assert report.n_gaussians == bitstream.read(data).codes.n_gaussians
