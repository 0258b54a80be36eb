"""``gi bench``: the paper's tables, measured here on your images.

    gi bench ablation IMAGES... -n 5000 --iterations 50000 --csv ablation.csv
    gi bench represent IMAGES... -n 5000,10000 --iterations 50000 --csv represent.csv
    gi bench rd IMAGES... --codecs jpeg,jpeg2000,webp,avif,jxl -n 800,1500,3000,5000 --csv rd.csv
    gi bench report rd.csv [more.csv ...] --summary rd.md --plot rd.png

Every command appends to its CSV as it goes and skips what the CSV already
holds, so a long benchmark can be stopped and resumed.

Classic codecs and the plot need the ``bench`` extra (``pip install -e ".[bench]"``);
a missing codec is skipped with a notice.
"""

from pathlib import Path
from typing import List, Optional

import typer

from gi_numba.bench import ablation, rd, represent
from gi_numba.bench.classic import CODECS
from gi_numba.bench.table import read_header
from gi_numba.defaults import ITERATIONS, N_GAUSSIANS
from gi_numba.fileio import write_atomically
from gi_numba.limits import check_number

from .common import ITERATIONS_OPTION, RECIPE_OPTION, emit, fail, image_paths, notice, parse_list, user_errors

BACKEND_HELP = "Rasteriser backend of our fits: cpu, cuda (NVIDIA GPU) or auto."

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Benchmarks: ablation, representation (Table 1), rate-distortion against classic codecs.")


def _codecs(names):
    chosen = []
    for name in parse_list(names, str, "--codecs"):
        if name not in CODECS:
            fail(f"unknown codec {name!r}; choose from {', '.join(CODECS)}")
        if CODECS[name].available():
            chosen.append(CODECS[name])
        else:
            notice(f"skipping {name}: not installed (pip install -e \".[bench]\" for imagecodecs and Pillow)")
    return chosen


def _checked(budgets, iterations, seed):
    """The budgets of ``-n``, once every numeric option is in range (one error line otherwise)."""
    ns = parse_list(budgets, int, "-n")
    if any(n < 1 for n in ns):
        fail(f"budgets must be positive, got {budgets}")
    if iterations is not None:
        check_number(iterations, "--iterations", 1, integer=True)
    check_number(seed, "--seed", 0, integer=True)
    return ns


JSON_HELP = "Print one JSON object (the result rows and the summary) instead of the summary."


def _write_summary(text, summary_path, rows, as_json):
    """Write the Markdown summary if asked; print it, or the rows and it as one JSON object."""
    if summary_path is not None:
        write_atomically(summary_path, text.encode())
    emit(as_json, dict(rows=rows, summary=text), [text.rstrip("\n")])


@app.command("ablation")
@user_errors
def ablation_command(
    images: List[Path] = typer.Argument(..., help="Images, or folders of images."),
    n: int = typer.Option(N_GAUSSIANS, "-n", "--n", help="Gaussian budget."),
    iterations: int = typer.Option(ITERATIONS, "--iterations", "-i", help="Iterations per fit."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    csv_path: Path = typer.Option(Path("ablation.csv"), "--csv", help="Results CSV (resumed if it exists)."),
    summary_path: Optional[Path] = typer.Option(None, "--summary", help="Write the Markdown table here."),
    backend: str = typer.Option("cpu", "--backend", help=BACKEND_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """Each GaussianImage++ component added to each parameterisation (the paper's Figure 6)."""
    _checked(str(n), iterations, seed)
    table = ablation.result_table(csv_path)
    ablation.measure(image_paths(images), table, n, iterations, seed=seed, backend=backend,
                     on_row=lambda row: typer.echo(
                         f"{row['image']:12} {row['variant']:28} {row['psnr']:6.2f} dB  "
                         f"MS-SSIM {row['ms_ssim']:.4f}  {row['seconds']:7.1f} s", err=True))
    _write_summary(ablation.summary(table.rows), summary_path, table.rows, as_json)


@app.command("represent")
@user_errors
def represent_command(
    images: List[Path] = typer.Argument(..., help="Images, or folders of images."),
    budgets: str = typer.Option("5000,10000", "-n", "--n", help="Gaussian budgets (comma-separated)."),
    iterations: int = typer.Option(ITERATIONS, "--iterations", "-i", help="Iterations per fit."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    csv_path: Path = typer.Option(Path("represent.csv"), "--csv", help="Results CSV (resumed if it exists)."),
    summary_path: Optional[Path] = typer.Option(None, "--summary", help="Write the Markdown table here."),
    backend: str = typer.Option("cpu", "--backend", help=BACKEND_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """GaussianImage vs GaussianImage++ as representations (the paper's Table 1)."""
    ns = _checked(budgets, iterations, seed)
    table = represent.result_table(csv_path)
    represent.measure(image_paths(images), table, ns, iterations, seed=seed, backend=backend,
                      on_row=lambda row: typer.echo(
                          f"{row['image']:12} {row['method']:16} {int(row['n']):6d} {row['psnr']:6.2f} dB  "
                          f"MS-SSIM {row['ms_ssim']:.4f}  {row['seconds']:7.1f} s  {row['peak_mib']:6.0f} MiB  "
                          f"{row['render_fps']:6.0f} FPS", err=True))
    _write_summary(represent.summary(table.rows), summary_path, table.rows, as_json)


def _print_point(row):
    typer.echo(f"{row['image']:12} {row['method']:9} {row['setting']:>6} {row['bpp']:7.4f} bpp "
               f"{row['psnr']:6.2f} dB  MS-SSIM {row['ms_ssim']:.4f}  enc {row['encode_s']:7.2f} s  "
               f"dec {row['decode_ms']:7.2f} ms", err=True)


def _report(rows, summary_path, plot_path, title, as_json):
    """Plot (if asked) and print/write the RD summary."""
    if plot_path is not None:
        try:
            rd.plot(rows, plot_path, title=title)
        except ImportError:
            notice("no plot: matplotlib is not installed (pip install -e \".[bench]\")")
    _write_summary(rd.summary(rows), summary_path, rows, as_json)


@app.command("rd")
@user_errors
def rd_command(
    images: List[Path] = typer.Argument(..., help="Images, or folders of images."),
    codecs: str = typer.Option("jpeg,jpeg2000,webp,avif,jxl", "--codecs", help="Classic codecs to compare."),
    budgets: str = typer.Option("800,1500,3000,5000", "-n", "--n", help="Our Gaussian budgets (comma-separated)."),
    recipe: Optional[str] = RECIPE_OPTION,
    iterations: Optional[int] = ITERATIONS_OPTION,
    seed: int = typer.Option(0, "--seed", help="Random seed of our fits."),
    csv_path: Path = typer.Option(Path("rd.csv"), "--csv", help="Points CSV (resumed if it exists)."),
    summary_path: Optional[Path] = typer.Option(None, "--summary", help="Write the Markdown summary here."),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="Write the RD plot (PNG) here."),
    title: Optional[str] = typer.Option(None, "--title", help="Title of the plot."),
    backend: str = typer.Option("cpu", "--backend", help=BACKEND_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """Rate-distortion points of our codec and classic codecs, then the summary."""
    ns = _checked(budgets, iterations, seed) if budgets else []
    paths = image_paths(images)
    table = rd.point_table(csv_path)
    rd.measure(paths, table, _codecs(codecs), ns, iterations, seed, on_point=_print_point, backend=backend,
               recipe=recipe)
    _report(table.rows, summary_path, plot_path, title, as_json)


@app.command("report")
@user_errors
def report_command(
    csvs: List[Path] = typer.Argument(..., help="CSVs written by one kind of gi bench command."),
    summary_path: Optional[Path] = typer.Option(None, "--summary", help="Write the Markdown summary here."),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="Write the RD plot (PNG) here (rd CSVs)."),
    title: Optional[str] = typer.Option(None, "--title", help="Title of the plot."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
):
    """The summary (and RD plot) of one or more result CSVs, e.g. of runs split over machines."""
    kinds = {read_header(path): path for path in csvs}
    if len(kinds) > 1:
        fail("the CSVs come from different gi bench commands; report one kind at a time")
    module = next((m for m in (rd, ablation, represent) if m.FIELDS == next(iter(kinds))), None)
    if module is None:
        fail(f"{csvs[0]}: not a result CSV of gi bench")
    rows = module.read_results(csvs)
    if not rows:
        fail("no results in the CSV files")
    if module is rd:
        _report(rows, summary_path, plot_path, title, as_json)
    elif plot_path is not None:
        fail("--plot draws rate-distortion curves; these are not rd results")
    else:
        _write_summary(module.summary(rows), summary_path, rows, as_json)
