"""`.gi` where images are opened anyway: Pillow, imageio v3, notebooks, and the CLI's conventions."""

import io
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

import gi_numba
from gi_numba.cli.progress import ProgressBar
from gi_numba.codec import compress, decoded_model, decompress
from gi_numba.image_io import to_uint8


@pytest.fixture(scope="module")
def gi_bytes(small_crop):
    return compress(small_crop, 80, iterations=400, qat_iterations=50)


@pytest.fixture
def gi_path(tmp_path, gi_bytes):
    path = tmp_path / "crop.gi"
    path.write_bytes(gi_bytes)
    return path


@pytest.fixture(scope="module", autouse=True)
def pillow_knows_gi():
    gi_numba.register_pillow()


def _decoded_uint8(data, channels=3):
    return to_uint8(decompress(data), channels)


# ----------------------------------------------------------------------------- Pillow


def test_pillow_opens_a_gi_file_by_its_magic(tmp_path, gi_path, gi_bytes):
    renamed = tmp_path / "no-extension"
    renamed.write_bytes(gi_bytes)
    for path in (gi_path, renamed):
        with Image.open(path) as im:
            assert (im.format, im.size, im.mode) == ("GI", (96, 64), "RGB")
            assert im.info["gaussians"] == decoded_model(gi_bytes).n_gaussians and im.info["version"] == 3
            assert im.info["bpp"] == pytest.approx(8 * len(gi_bytes) / (96 * 64))
            assert np.array_equal(np.asarray(im), _decoded_uint8(gi_bytes))


def test_pillow_draft_renders_at_the_asked_size(gi_path, gi_bytes):
    with Image.open(gi_path) as im:
        im.draft("RGB", (192, 100))
        assert np.array_equal(np.asarray(im), to_uint8(decompress(gi_bytes, height=128, width=192)))
    with Image.open(gi_path) as im:
        im.thumbnail((48, 48))
        assert im.size == (48, 32)


def test_pillow_truncated_file_is_its_usual_oserror_with_our_message(tmp_path, gi_bytes):
    path = tmp_path / "cut.gi"
    path.write_bytes(gi_bytes[:len(gi_bytes) // 2])
    with Image.open(path) as im:
        assert im.size == (96, 64)  # the header is intact
        with pytest.raises(OSError, match="checksum mismatch|truncated"):
            im.load()
    path.write_bytes(gi_bytes[:10])
    with pytest.raises(OSError):  # Pillow's UnidentifiedImageError: the header itself is cut
        Image.open(path)


def test_pillow_save_round_trip(tmp_path, small_crop):
    rgb = Image.fromarray(np.rint(small_crop * 255).astype(np.uint8))
    rgb.save(tmp_path / "a.gi", n_gaussians=60, iterations=300)
    data = (tmp_path / "a.gi").read_bytes()
    assert data == compress(np.asarray(rgb), 60, iterations=300)
    with Image.open(tmp_path / "a.gi") as im:
        assert im.info["gaussians"] <= 60 and np.array_equal(np.asarray(im), _decoded_uint8(data))
    rgb.convert("L").save(tmp_path / "g.gi", bpp=2.0, iterations=300)
    with Image.open(tmp_path / "g.gi") as im:
        assert im.mode == "L" and np.asarray(im).shape == (64, 96)
        assert abs(im.info["bpp"] - 2.0) <= 0.2
    rgb.save(tmp_path / "p.gi", psnr=20.0, iterations=300, qat_iterations=30)
    with Image.open(tmp_path / "p.gi") as im:
        assert gi_numba.psnr(np.asarray(im, np.float32) / 255, small_crop) >= 19.9  # 20 dB, less 8-bit rounding
    with pytest.raises(ValueError, match="exactly one"):
        rgb.save(tmp_path / "none.gi")


def test_other_files_are_not_claimed(tmp_path, crop_png):
    with Image.open(crop_png) as im:
        assert im.format == "PNG"


# ----------------------------------------------------------------------------- imageio


def test_imageio_reads_gi_files(gi_path, gi_bytes):
    assert np.array_equal(iio.imread(gi_path), _decoded_uint8(gi_bytes))
    assert np.array_equal(iio.imread(gi_bytes, plugin="gi"), _decoded_uint8(gi_bytes))
    assert iio.imread(gi_path, scale=2).shape == (128, 192, 3)
    props = iio.improps(gi_path)
    assert props.shape == (64, 96, 3) and props.dtype == np.uint8
    assert iio.immeta(gi_path)["gaussians"] == decoded_model(gi_bytes).n_gaussians


def test_imageio_writes_gi_files(tmp_path, small_crop):
    pixels = np.rint(small_crop * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "w.gi", pixels, n_gaussians=50, iterations=300)
    expected = compress(pixels, 50, iterations=300)
    assert (tmp_path / "w.gi").read_bytes() == expected
    assert iio.imwrite("<bytes>", pixels, extension=".gi", n_gaussians=50, iterations=300) == expected


# ----------------------------------------------------------------------------- notebooks


def test_models_and_decoded_files_display_themselves(gi_bytes, small_crop):
    model = decoded_model(gi_bytes)
    shown = iio.imread(model._repr_png_())
    assert shown.shape == (64, 96, 3) and np.array_equal(shown, _decoded_uint8(gi_bytes))
    big = gi_numba.GaussianImage(model.params * np.float32([8, 8, 64, 64, 64, 1, 1, 1]), model.lam, 512, 768)
    assert iio.imread(big._repr_png_()).shape == (341, 512, 3)  # small by default: longer side 512


def test_show_gaussians_draws_the_centres(gi_bytes):
    model = decoded_model(gi_bytes)
    picture = gi_numba.show_gaussians(model)
    red = (picture.array[..., 0] == 1.0) & (picture.array[..., 1] < 0.2)
    assert picture.array.shape == (64, 96, 3) and red.sum() >= model.n_gaussians // 2
    assert iio.imread(picture._repr_png_()).shape == (64, 96, 3)


# ----------------------------------------------------------------------------- CLI conventions


def _python(*args, **kwargs):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, timeout=120, **kwargs)


def test_python_dash_m_is_the_gi_command():
    run = _python("-m", "gi_numba", "--help")
    assert run.returncode == 0 and b"compress-dir" in run.stdout and b"Usage: gi" in run.stdout
    run = _python("-m", "gi_numba", "--version")
    assert run.returncode == 0 and run.stdout.decode().strip() == f"gi-numba {gi_numba.__version__}"


def test_shell_completion():
    script = "from gi_numba.cli.main import main; main()"
    env = dict(os.environ, _GI_COMPLETE="complete_bash", COMP_WORDS="gi com", COMP_CWORD="1")
    run = _python("-c", script, env=env)
    assert run.returncode == 0 and run.stdout.decode().split() == ["compress", "compress-dir", "compare"]
    # the shell as named, not guessed from the processes above (none is a shell when pytest runs detached)
    named = dict(os.environ, _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    run = _python("-c", script, "--show-completion", "bash", env=named)
    assert run.returncode == 0 and b"_GI_COMPLETE" in run.stdout


def test_stdin_and_stdout(crop_png, tmp_path):
    script = "from gi_numba.cli.main import main; main()"
    encoded = _python("-c", script, "compress", "-", "-n", 40, "--iterations", 200, input=crop_png.read_bytes())
    assert encoded.returncode == 0, encoded.stderr
    assert encoded.stdout[:4] == b"GIPP" and b"output     <stdout>" in encoded.stderr
    decoded = _python("-c", script, "decode", "-", "-o", "-", input=encoded.stdout)
    assert decoded.returncode == 0, decoded.stderr
    assert np.array_equal(iio.imread(decoded.stdout), _decoded_uint8(encoded.stdout))
    mixed = _python("-c", script, "decode", "-", "-o", "-", "--json", input=encoded.stdout)
    assert mixed.returncode == 2 and mixed.stdout == b"" and b"--json" in mixed.stderr


def test_compress_labels_its_phases(small_crop):
    stream = io.StringIO()
    compress(small_crop, 40, iterations=1000, qat_iterations=200, progress=ProgressBar(stream))
    lines = stream.getvalue().splitlines()
    warm = [l for l in lines if l.startswith("warm-up ")]
    fine, coarse = ([l for l in lines if l.startswith(f"QAT ({depths} bits) ")] for depths in ("12/6/6/6", "11/5/6/6"))
    rdo = [l for l in lines if l.startswith("RDO ")]
    assert len(warm) == 8 and len(fine) == len(coarse) == 2  # one pass: QAT is the last 200 of 1 000, per depth choice
    assert lines == warm + fine + coarse + rdo and warm[-1].startswith("warm-up 800/800")
    assert rdo[0].startswith("RDO 1/16")  # then a line per sweep, up to sixteen
    assert fine[-1].startswith("QAT (12/6/6/6 bits) 200/200") and coarse[-1].startswith("QAT (11/5/6/6 bits) 200/200")
    stream = io.StringIO()
    compress(small_crop, 40, iterations=1000, qat_iterations=200, bits={"position": 12}, progress=ProgressBar(stream))
    assert [l for l in stream.getvalue().splitlines() if l.startswith("QAT")][-1].startswith("QAT 200/200")
