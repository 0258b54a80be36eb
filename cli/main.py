"""The ``gi`` command: fit, render, inspect and compare Gaussian images.

Every command takes ``--json``: it then prints exactly one JSON object on
stdout and nothing else there (notices and progress go to stderr). A user
error is one ``error: ...`` line on stderr and exit code 2.
"""

import math
import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

import gi_numba
from gi_numba import batch, bitstream
from gi_numba.codec import decoded_model, encode
from gi_numba.defaults import N_GAUSSIANS
from gi_numba.fileio import check_writable, write_atomically
from gi_numba.image_io import example_image_path, load_image, png_bytes, save_png
from gi_numba.limits import check_number
from gi_numba.metrics import ms_ssim, psnr
from gi_numba.model import GaussianImage
from gi_numba.snapshots import Snapshots

from . import bench
from .common import (EXIT_INTERRUPTED, EXIT_USER_ERROR, ITERATIONS_OPTION, MAX_PIXELS_OPTION, RECIPE_OPTION, emit,
                     fail, notice, parse_list, user_errors)
from .progress import FolderProgress, ProgressBar

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="GaussianImage++ with Numba: fit images with 2D Gaussians, render them at any size.")
app.add_typer(bench.app, name="bench")


def _print_version(value: bool):
    if value:
        typer.echo(f"gi-numba {gi_numba.__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")):
    """The options of ``gi`` itself (before a command)."""


def _fmt_ssim(value):
    return "n/a (image side under 161 px)" if math.isnan(value) else f"{value:.4f}"


@app.command("fit")
@user_errors
def fit_command(
    image: Optional[Path] = typer.Argument(None, help="Image to fit (PNG, JPEG, BMP, TIFF, WebP)."),
    n: int = typer.Option(N_GAUSSIANS, "-n", "--n-gaussians", help="Number of Gaussians (the budget)."),
    recipe: Optional[str] = RECIPE_OPTION,
    iterations: Optional[int] = ITERATIONS_OPTION,
    seconds: Optional[float] = typer.Option(None, "--seconds", help="Stop after this many seconds (the result "
                                            "then depends on this machine's speed)."),
    target_psnr: Optional[float] = typer.Option(None, "--psnr", help="Stop once the training PSNR reaches this."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Model file (.npz) [IMAGE name].npz."),
    render: Optional[Path] = typer.Option(None, "--render", help="Also write the fitted image as PNG."),
    example: bool = typer.Option(False, "--example", help="Fit the small photo bundled with gi-numba."),
    model_name: str = typer.Option("gi++", "--model", help="gi++, or the GaussianImage baselines gi-cholesky "
                                   "and gi-rs (Adan, lr 0.001; no densification or CAF unless asked)."),
    densify: Optional[bool] = typer.Option(None, "--densify/--no-densify",
                                           help="Distortion-driven growth and pruning [on for gi++]."),
    caf: Optional[bool] = typer.Option(None, "--caf/--no-caf", help="Content-aware filters [on for gi++]."),
    backend: str = typer.Option("cpu", "--backend", help="Rasteriser backend: cpu, cuda (NVIDIA GPU) or auto."),
    snapshots: Optional[Path] = typer.Option(
        None, "--snapshots", help="Write render, error map and Gaussian centres (PNG) into this folder."),
    snapshot_at: Optional[str] = typer.Option(
        None, "--snapshot-at", help="Iterations for --snapshots, e.g. 1,100,1000 [first + every tenth]."),
    gif: Optional[Path] = typer.Option(None, "--gif", help="Write the training progress as an animated GIF."),
    max_pixels: int = MAX_PIXELS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the results."),
):
    """Fit Gaussians to an image; Ctrl-C stops early and saves the best state so far."""
    if example == (image is not None):
        fail("give an IMAGE or --example (one of them)")
    _check_counts(n=n, iterations=iterations, seed=seed)
    if seconds is not None:
        check_number(seconds, "--seconds", 0, above=True)
    if target_psnr is not None:
        check_number(target_psnr, "--psnr", 0, 200, above=True)
    source = example_image_path() if example else image
    output = output or Path(Path(source).with_suffix(".npz").name)
    for path in filter(None, (output, render, gif)):
        check_writable(path, inputs=[source])
    pictures = _snapshots(snapshots, snapshot_at, gif)
    target, info = load_image(source, max_pixels)
    for message in info.notices:
        notice(message)
    bar = ProgressBar()
    try:
        model = gi_numba.fit(source, n, iterations=iterations, seed=seed, recipe=recipe, seconds=seconds,
                             psnr=target_psnr, model=model_name, densify=densify, caf=caf, backend=backend,
                             progress=bar, snapshots=pictures, max_pixels=max_pixels)
    except gi_numba.FitDiverged as exc:
        bar.close()
        if exc.model is not None:
            exc.model.save(output)
            fail(f"{exc} (saved to {output})")
        fail(str(exc))
    finally:
        bar.close()
    model.save(output)
    rendered = model.render(max_pixels=max_pixels)
    if render is not None:
        save_png(render, rendered, model.channels)
    result = dict(psnr=psnr(rendered, target), ms_ssim=ms_ssim(rendered, target), n_gaussians=model.n_gaussians,
                  iterations=model.stats["iterations_run"], seconds=round(model.stats["seconds"], 3),
                  output=str(output), render=str(render) if render else None,
                  interrupted=model.stats["interrupted"], recipe=model.settings["recipe"],
                  stopped=model.stats["stopped"])
    emit(as_json, result, [
        f"PSNR       {result['psnr']:.2f} dB",
        f"MS-SSIM    {_fmt_ssim(result['ms_ssim'])}",
        f"Gaussians  {result['n_gaussians']}",
        f"fit        {result['seconds']:.1f} s ({result['iterations']} iterations, {result['recipe']} recipe"
        + (f"; {STOP_REASONS[result['stopped']]})" if result["stopped"] else ")"),
        f"model      {output}" + (f"\nrender     {render}" if render else ""),
    ])
    if model.stats["interrupted"]:
        notice(f"interrupted after {model.stats['iterations_run']} iterations; saved the best state to {output}")
        raise typer.Exit(EXIT_INTERRUPTED)


#: What the fit's summary says when a stopping rule ended it early.
STOP_REASONS = dict(time="stopped at --seconds: the result depends on this machine's speed",
                    psnr="stopped at --psnr", converged="stopped once converged")


def _snapshots(folder, at, gif):
    """The :class:`Snapshots` the fit options ask for, or None."""
    if at is not None and folder is None:
        fail("--snapshot-at needs --snapshots DIR")
    if folder is None and gif is None:
        return None
    if folder is not None and folder.exists() and not folder.is_dir():
        fail(f"--snapshots {folder}: not a folder")
    iterations = None
    if at is not None:
        iterations = parse_list(at, int, "--snapshot-at")
        if min(iterations) < 1:
            fail(f"--snapshot-at wants positive iterations, got {at!r}")
    return Snapshots(folder, gif, at=iterations)


@app.command("render")
@user_errors
def render_command(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="Model file (.npz) from 'gi fit'."),
    output: Path = typer.Option(..., "-o", "--output", help="PNG to write."),
    scale: Optional[float] = typer.Option(None, "--scale", help="Render at this multiple of the fitted size."),
    width: Optional[int] = typer.Option(None, "--width", help="Output width in pixels."),
    height: Optional[int] = typer.Option(None, "--height", help="Output height in pixels."),
    max_pixels: int = MAX_PIXELS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the results."),
):
    """Render a fitted model to a PNG, at its own size or any other."""
    check_writable(output, inputs=[model_path])
    model = GaussianImage.load(model_path, max_pixels)
    start = time.perf_counter()
    image = model.render(height=height, width=width, scale=scale, max_pixels=max_pixels)
    seconds = time.perf_counter() - start
    save_png(output, image, model.channels)
    result = dict(height=image.shape[0], width=image.shape[1], n_gaussians=model.n_gaussians,
                  seconds=round(seconds, 4), output=str(output))
    emit(as_json, result, [f"wrote {output} ({image.shape[1]}x{image.shape[0]}) in {seconds * 1e3:.1f} ms"])


@app.command("info")
@user_errors
def info_command(
    path: Path = typer.Argument(..., metavar="FILE", help="Model file (.npz) or compressed file (.gi)."),
    max_pixels: int = MAX_PIXELS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
):
    """Describe a model (.npz) or a compressed file (.gi, with its rate breakdown)."""
    data = _read_bytes(path)
    if data[:len(bitstream.MAGIC)] == bitstream.MAGIC:
        _info_compressed(data, max_pixels, as_json)
        return
    model = GaussianImage.load(path, max_pixels)
    result = dict(height=model.height, width=model.width, channels=model.channels, n_gaussians=model.n_gaussians,
                  iteration=model.iteration, psnr=model.psnr, seed=model.seed, settings=model.settings,
                  stats=model.stats)
    psnr_text = "unknown" if model.psnr is None else f"{model.psnr:.2f} dB (training)"
    emit(as_json, result, [
        f"image      {model.width}x{model.height}, {'grayscale' if model.channels == 1 else 'RGB'}",
        f"Gaussians  {model.n_gaussians}",
        f"iteration  {model.iteration}",
        f"PSNR       {psnr_text}",
        "settings   " + ", ".join(f"{k}={v}" for k, v in model.settings.items()),
    ])


#: ``gi info``'s rate groups: which quantised attributes each one sums.
_BREAKDOWN = dict(positions=("position",), covariance=("variance", "covariance"), colour=("colour",))


def _info_compressed(data, max_pixels, as_json):
    parsed = bitstream.read(data, max_pixels)
    version = parsed.codes.quantizers.version
    groups = {group: [stream for a in bitstream.format_of(version).coding.attributes if a.name in names for stream in a.streams]
              for group, names in _BREAKDOWN.items()}
    sizes = {s.name: s.nbytes for s in parsed.streams}
    breakdown = {group: sum(sizes[name] for name in names) for group, names in groups.items()}
    breakdown["header"] = len(data) - sum(sizes.values())
    pixels = parsed.height * parsed.width
    result = dict(format="gi", version=version, height=parsed.height, width=parsed.width, channels=parsed.channels,
                  n_gaussians=parsed.codes.n_gaussians, bytes=len(data), bpp=8.0 * len(data) / pixels,
                  bits=parsed.codes.quantizers.bits, breakdown=breakdown,
                  streams=[dict(name=s.name, model=s.model, bytes=s.nbytes) for s in parsed.streams])
    n = max(parsed.codes.n_gaussians, 1)
    lines = [f"format     .gi version {version}",
             f"image      {parsed.width}x{parsed.height}, {'grayscale' if parsed.channels == 1 else 'RGB'}",
             f"Gaussians  {parsed.codes.n_gaussians}",
             f"size       {len(data)} bytes, {result['bpp']:.4f} bpp, {8.0 * len(data) / n:.1f} bits per Gaussian",
             "bits       " + ", ".join(f"{k} {v}" for k, v in result["bits"].items())]
    lines += [f"  {group:11}{nbytes:8d} bytes  {100.0 * nbytes / len(data):5.1f}%"
              for group, nbytes in breakdown.items()]
    lines += [f"    {s.name:6} {s.model:13} {s.nbytes:7d} bytes" for s in parsed.streams]
    emit(as_json, result, lines)


@app.command("compress")
@user_errors
def compress_command(
    image: Optional[Path] = typer.Argument(None, help="Image to compress ('-': standard input)."),
    n: Optional[int] = typer.Option(None, "-n", "--n-gaussians", help="Number of Gaussians (sets the rate)."),
    bpp: Optional[float] = typer.Option(None, "--bpp", help="Target rate in bits per pixel (chooses N from a "
                                        "short pilot encode; within 10%)."),
    target_psnr: Optional[float] = typer.Option(None, "--psnr", help="Smallest file found that decodes at this "
                                                "PSNR in dB or more (chooses N; up to six encodes)."),
    recipe: Optional[str] = RECIPE_OPTION,
    iterations: Optional[int] = ITERATIONS_OPTION,
    qat_iterations: Optional[int] = typer.Option(
        None, "--qat-iterations", help="QAT iterations [paper recipe: 0.2 x iterations, after them; fast: the last "
                                       "0.1 of them]."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output file [IMAGE name].gi; '-': standard output [for IMAGE '-']."),
    example: bool = typer.Option(False, "--example", help="Compress the photo bundled with gi-numba."),
    position_bits: Optional[int] = typer.Option(None, "--position-bits", help="Bits per position channel [12; "
                                                "the default recipe with no depths given: 12 or 11, with the "
                                                "variances at 6 or 5, whichever file has the lower D + lambda R]."),
    variance_bits: Optional[int] = typer.Option(None, "--variance-bits", help="Bits per variance [paper recipe "
                                                "(.gi v1): 10, default (v2): 6 or 5, see --position-bits]."),
    covariance_bits: Optional[int] = typer.Option(None, "--covariance-bits", help="Bits of the covariance term "
                                                  "[v1: 10, v2 (as a correlation): 6]."),
    colour_bits: Optional[int] = typer.Option(None, "--colour-bits", help="Bits per colour channel [6; v2: YCoCg]."),
    lmbda: Optional[float] = typer.Option(None, "--lambda", help="Rate weight of quantisation-aware training, "
                                          "loss D + lambda R (MSE per bpp; 0: none) [default recipe: from the "
                                          "warm-up's slope; paper: 0]."),
    backend: str = typer.Option("cpu", "--backend", help="Rasteriser backend: cpu, cuda (NVIDIA GPU) or auto."),
    max_pixels: int = MAX_PIXELS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the results."),
):
    """Compress an image into a .gi file (fit, quantisation-aware training, entropy coding)."""
    if example == (image is not None):
        fail("give an IMAGE or --example (one of them)")
    if sum(value is not None for value in (n, bpp, target_psnr)) != 1:
        fail("give exactly one of -n, --bpp and --psnr")
    bits = {name: depth for name, depth in dict(position=position_bits, variance=variance_bits,
                                                 covariance=covariance_bits, colour=colour_bits).items()
            if depth is not None}
    _check_counts(n=n, iterations=iterations, seed=seed, qat_iterations=qat_iterations, bpp=bpp, **bits)
    if target_psnr is not None:
        check_number(target_psnr, "--psnr", 0, above=True)
    if lmbda is not None:
        check_number(lmbda, "--lambda", 0)
    source = example_image_path() if example else image
    if output is None:
        output = STDIO if source == STDIO else Path(Path(source).with_suffix(".gi").name)
    _check_output(output, source, as_json)
    name = _name(source)
    source = _read_bytes(source) if source == STDIO else source
    target, info = load_image(source, max_pixels, name=name)
    for message in info.notices:
        notice(message)
    bar = ProgressBar()
    try:
        data, report = encode(source, n, bpp, target_psnr, iterations=iterations, qat_iterations=qat_iterations,
                              seed=seed, recipe=recipe, bits=bits, lmbda=lmbda, backend=backend, progress=bar,
                              max_pixels=max_pixels)
    finally:
        bar.close()
    _write(output, data)
    depths = bitstream.read_header(data).bits
    result = dict(bytes=report.nbytes, bpp=report.bpp, psnr=report.psnr, ms_ssim=report.ms_ssim,
                  n_gaussians=report.n_gaussians, seconds=round(report.seconds, 3), output=str(output),
                  bits=depths, **{"lambda": report.lmbda})
    emit(as_json, result, [
        f"bytes      {report.nbytes} ({report.bpp:.4f} bpp)",
        f"PSNR       {report.psnr:.2f} dB (decoded file)",
        f"MS-SSIM    {_fmt_ssim(report.ms_ssim)}",
        f"Gaussians  {report.n_gaussians}",
        "bits       " + ", ".join(f"{name} {depth}" for name, depth in depths.items()),
        f"lambda     {report.lmbda:.4g} (rate weight of QAT)",
        f"encode     {report.seconds:.1f} s",
        f"output     {_name(output, '<stdout>')}",
    ], to_stderr=output == STDIO)
    if report.interrupted:
        notice(f"interrupted: wrote the best state reached so far to {output}")
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command("compress-dir")
@user_errors
def compress_dir_command(
    in_dir: Path = typer.Argument(..., help="Folder of images (PNG, JPEG, BMP, TIFF, WebP, GIF)."),
    out_dir: Path = typer.Argument(..., help="Folder for the .gi files and summary.csv (created if needed)."),
    n: Optional[int] = typer.Option(None, "-n", "--n-gaussians", help="Gaussians per image."),
    bpp: Optional[float] = typer.Option(None, "--bpp", help="Target rate per image (chooses N)."),
    recipe: Optional[str] = RECIPE_OPTION,
    iterations: Optional[int] = ITERATIONS_OPTION,
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    lmbda: Optional[float] = typer.Option(None, "--lambda", help="Rate weight of quantisation-aware training, "
                                          "as in gi compress [the recipe's]."),
    workers: int = typer.Option(0, "--workers", help="Local worker processes [0: one per core]."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="Run on this Dask distributed scheduler (tcp://host:port)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the results."),
):
    """Compress every image of a folder; reruns skip images already done (resumable)."""
    if (n is None) == (bpp is None):
        fail("give either -n or --bpp (exactly one)")
    if workers < 0:
        fail(f"--workers must be at least 1 (0: one per core), got {workers}")
    _check_counts(n=n, iterations=iterations, seed=seed, bpp=bpp)
    if lmbda is not None:
        check_number(lmbda, "--lambda", 0)
    workers = workers or os.cpu_count() or 1
    if in_dir.is_dir():
        for link in batch.broken_links(in_dir):
            notice(f"skipping {link}: broken or looping symbolic link")
    counter = FolderProgress(len(batch.image_files(in_dir)) if in_dir.is_dir() else 0)
    rows = batch.compress_dir(in_dir, out_dir, n_gaussians=n, bpp=bpp, iterations=iterations, seed=seed,
                              recipe=recipe, lmbda=lmbda, workers=workers, scheduler=scheduler, on_row=counter)
    counts = {status: sum(row["status"] == status for row in rows) for status in ("ok", "skipped", "error")}
    result = dict(images=len(rows), **counts, summary=str(out_dir / "summary.csv"),
                  failed=[dict(file=row["file"], error=row["error"]) for row in rows if row["status"] == "error"])
    emit(as_json, result, [f"{len(rows)} images: {counts['ok']} compressed, {counts['skipped']} already done, "
                           f"{counts['error']} failed; summary {result['summary']}"]
         + [f"  failed  {row['file']}: {row['error']}" for row in rows if row["status"] == "error"])


@app.command("decode")
@user_errors
def decode_command(
    file: Path = typer.Argument(..., metavar="FILE.gi", help="Compressed file ('-': standard input)."),
    output: Path = typer.Option(..., "-o", "--output", help="PNG to write ('-': standard output)."),
    scale: Optional[float] = typer.Option(None, "--scale", help="Decode at this multiple of the stored size."),
    region: Optional[str] = typer.Option(None, "--region", metavar="X,Y,W,H",
                                         help="Decode only this window (pixels of the decoded size)."),
    backend: str = typer.Option("cpu", "--backend", help="Rasteriser backend: cpu, cuda (NVIDIA GPU) or auto."),
    max_pixels: int = MAX_PIXELS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the results."),
):
    """Decode a .gi file to a PNG; needs nothing but the file."""
    _check_output(output, file, as_json)
    window = None
    if region is not None:
        try:
            window = tuple(int(part) for part in region.split(","))
        except ValueError:
            fail(f"--region wants X,Y,W,H as integers, got {region!r}")
        if len(window) != 4:
            fail(f"--region wants four integers X,Y,W,H, got {region!r}")
    data = _read_bytes(file)
    start = time.perf_counter()
    model = decoded_model(data, max_pixels)
    image = model.render(scale=scale, backend=backend, region=window, max_pixels=max_pixels)
    seconds = time.perf_counter() - start
    _write(output, png_bytes(image, model.channels))
    result = dict(height=image.shape[0], width=image.shape[1], n_gaussians=model.n_gaussians,
                  seconds=round(seconds, 4), output=str(output))
    summary = (f"wrote {_name(output, '<stdout>')} ({image.shape[1]}x{image.shape[0]}, {model.n_gaussians} "
               f"Gaussians) in {seconds * 1e3:.1f} ms")
    emit(as_json, result, [summary], to_stderr=output == STDIO)


def _check_counts(n=None, iterations=None, seed=None, qat_iterations=None, bpp=None, **bits):
    """Range and finiteness of the numeric options, before any file is read (:class:`GIError` names the option)."""
    checks = dict(n=("-n", 1), iterations=("--iterations", 1), seed=("--seed", 0),
                  qat_iterations=("--qat-iterations", 0))
    for name, value in dict(n=n, iterations=iterations, seed=seed, qat_iterations=qat_iterations).items():
        if value is not None:
            option, low = checks[name]
            check_number(value, option, low, integer=True)
    if bpp is not None:
        check_number(bpp, "--bpp", 0, above=True)
    for name, depth in bits.items():
        check_number(depth, f"--{name}-bits", 1, 16, integer=True)


#: The path that means standard input or output, as classic codec tools take it.
STDIO = Path("-")


def _name(path, stream="<stdin>"):
    """How messages name ``path`` (``-`` is the stream ``stream``)."""
    return stream if path == STDIO else str(path)


def _check_output(output, source, as_json):
    """Fail before any work if ``output`` cannot be written, is the input, or is stdout while --json wants it."""
    if output == STDIO:
        if as_json:
            fail("--json prints to standard output, which '-o -' already uses for the file; drop one of them")
        return
    check_writable(output, inputs=[] if source == STDIO else [source])


def _write(output, data):
    """Write ``data`` to the file ``output`` atomically, or to standard output for ``-``."""
    if output == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomically(output, data)


def _read_bytes(path):
    if path == STDIO:
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path}: is a directory")
    except OSError as exc:
        fail(f"{path}: cannot be read ({exc.strerror})")


@app.command("compare")
@user_errors
def compare_command(
    first: Path = typer.Argument(..., metavar="A", help="First image."),
    second: Path = typer.Argument(..., metavar="B", help="Second image."),
    max_pixels: int = MAX_PIXELS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
):
    """PSNR and MS-SSIM between two images of the same size."""
    a, _ = load_image(first, max_pixels)
    b, _ = load_image(second, max_pixels)
    if a.shape != b.shape:
        fail(f"images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    result = dict(psnr=psnr(a, b), ms_ssim=ms_ssim(a, b))
    emit(as_json, result, [f"PSNR     {result['psnr']:.2f} dB", f"MS-SSIM  {_fmt_ssim(result['ms_ssim'])}"])


def main(argv=None):
    """Console entry point: usage errors become one line and exit code 2 as well."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = app(args=argv or ["--help"], prog_name="gi", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        code = EXIT_INTERRUPTED
    except Exception as exc:
        if getattr(exc, "exit_code", None) != EXIT_USER_ERROR or not hasattr(exc, "format_message"):
            raise
        typer.echo(f"error: {exc.format_message()}", err=True)
        code = EXIT_USER_ERROR
    sys.exit(code if isinstance(code, int) else 0)
