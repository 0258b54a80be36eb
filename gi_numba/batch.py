"""Compress whole folders: one ``.gi`` per image and a ``summary.csv``, locally or on a Dask cluster.

Each image is one independent job (:func:`compress_job`): it reads its input,
writes its ``.gi`` atomically and returns one summary row, so jobs can run in
any process — local worker processes (:mod:`multiprocessing`) or the
workers of an existing Dask distributed cluster; the caller only gathers rows.

A job whose output already exists and decodes is skipped (its row is
measured from the file), so rerunning after a crash or Ctrl-C loses nothing.
A job that fails (an unreadable image, say) gives a row with status
``error`` and the message, and the others carry on.
"""

import csv
import io
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numba

from . import bitstream
from .codec import decoded_model, encode
from .errors import GIError
from .fileio import check_writable, make_folder, write_atomically
from .image_io import load_image
from .interrupt import Interrupted, catching_sigint, ignore_sigint, requested as interrupt_requested
from .limits import check_number
from .metrics import ms_ssim, psnr
from .recipes import DEFAULT_RECIPE, recipe_named

#: Files ``compress-dir`` treats as images (by extension, case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")

#: Columns of ``summary.csv``.
SUMMARY_FIELDS = ("file", "height", "width", "n_gaussians", "bytes", "bpp", "psnr", "ms_ssim", "seconds",
                  "status", "error")


@dataclass
class Job:
    """Compress ``source`` into ``output`` at ``n_gaussians`` or at ``bpp`` (exactly one is set)."""

    source: str
    output: str
    n_gaussians: int | None = None
    bpp: float | None = None
    iterations: int | None = None  # None: the recipe's
    seed: int = 0
    threads: int | None = None  # Numba threads inside the job; None leaves the process's setting
    recipe: str | None = None
    lmbda: float | None = None  # QAT's rate weight; None: the recipe's


def image_files(folder) -> list:
    """The images directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def broken_links(folder) -> list:
    """Symbolic links inside ``folder`` named like images whose target is missing or loops (skipped, with a notice)."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_symlink() and not p.exists() and p.suffix.lower() in IMAGE_EXTENSIONS)


def output_names(files) -> list:
    """``NAME.gi`` for each image, or ``NAME.EXT.gi`` where two images share a name (``a.png``, ``a.jpg``).

    Names are compared ignoring case (as a case-insensitive disk would); if
    two outputs would still coincide, :class:`GIError` names both inputs
    before any work is done.
    """
    stems = Counter(p.stem.casefold() for p in files)
    names = [(p.stem if stems[p.stem.casefold()] == 1 else p.name) + ".gi" for p in files]
    taken = {}
    for path, name in zip(files, names):
        other = taken.setdefault(name.casefold(), path)
        if other != path:
            raise GIError(f"{other.name} and {path.name} would both be written to {name}; rename one of them")
    return names


def jobs_for(in_dir, out_dir, n_gaussians=None, bpp=None, iterations=None, seed=0, threads=None, recipe=None,
             lmbda=None) -> list:
    """One :class:`Job` per image of ``in_dir``; outputs are ``out_dir/<name>.gi`` (:func:`output_names`)."""
    files = image_files(in_dir)
    return [Job(str(p), str(Path(out_dir) / name), n_gaussians, bpp, iterations, seed, threads, recipe, lmbda)
            for p, name in zip(files, output_names(files))]


def compress_job(job) -> dict:
    """Run one :class:`Job` and return its summary row (a dict with :data:`SUMMARY_FIELDS`).

    An encode stopped by Ctrl-C writes nothing and gives a row with status
    ``interrupted``, which :func:`run_jobs` does not record: a rerun does it again.
    """
    if job.threads:
        numba.set_num_threads(min(job.threads, numba.config.NUMBA_NUM_THREADS))
    row = dict.fromkeys(SUMMARY_FIELDS, "")
    row["file"] = Path(job.source).name
    start = time.perf_counter()
    try:
        target, _ = load_image(job.source)
        row["height"], row["width"] = target.shape[:2]
        data = _existing(job.output)
        if data is None:
            data, report = encode(job.source, job.n_gaussians, job.bpp, iterations=job.iterations, seed=job.seed,
                                  recipe=job.recipe, lmbda=job.lmbda)
            if report.interrupted:
                row.update(status="interrupted", error="stopped by Ctrl-C; nothing written")
                return row
            write_atomically(job.output, data)
            row.update(status="ok", **_measured(report.nbytes, report.n_gaussians, report.psnr, report.ms_ssim,
                                                target))
        else:
            model = decoded_model(data)
            decoded = model.render()
            row.update(status="skipped", **_measured(len(data), model.n_gaussians, psnr(decoded, target),
                                                     ms_ssim(decoded, target), target))
    except GIError as exc:
        row.update(status="error", error=str(exc))
    except MemoryError:
        row.update(status="error", error="out of memory")
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def _measured(nbytes, n_gaussians, psnr_db, ms_ssim_value, target):
    """The measured columns of a summary row."""
    bpp = 8.0 * nbytes / (target.shape[0] * target.shape[1])
    return dict(n_gaussians=n_gaussians, bytes=nbytes, bpp=round(bpp, 5), psnr=round(psnr_db, 4),
                ms_ssim=_rounded(ms_ssim_value))


def _existing(path):
    """The bytes of a valid ``.gi`` file at ``path``, or None (missing or damaged: redo it)."""
    try:
        data = Path(path).read_bytes()
        bitstream.read(data)
        return data
    except (OSError, GIError):
        return None


def _rounded(value):
    return "" if value != value else round(value, 5)  # MS-SSIM is NaN on small images


def run_jobs(jobs, workers=1, scheduler=None, on_row=None) -> list:
    """Run ``jobs`` and return their rows in job order.

    ``workers > 1`` runs them in that many local processes (give the jobs
    ``threads=1`` so the processes do not compete for cores); ``scheduler`` (``tcp://host:port``) submits them to a Dask
    distributed cluster instead. ``on_row(row)`` is called as each finishes.
    Ctrl-C stops the run promptly: jobs not finished by then (the running
    ones are stopped, the rest never start) have ``None`` as their row.
    """
    rows = [None] * len(jobs)

    def finished(index, row):
        if row["status"] == "interrupted":
            return
        rows[index] = row
        if on_row is not None:
            on_row(row)

    with catching_sigint():
        if scheduler is not None:
            _run_on_dask(jobs, scheduler, finished)
        elif workers > 1 and len(jobs) > 1:
            _run_in_processes(jobs, workers, finished)
        else:
            for i, job in enumerate(jobs):
                if interrupt_requested():
                    break
                finished(i, compress_job(job))
    return rows


def _run_in_processes(jobs, workers, finished):
    """Local worker processes (they ignore Ctrl-C: on Ctrl-C here they are terminated, their outputs unwritten)."""
    pool = get_context("spawn").Pool(workers, initializer=ignore_sigint)
    try:
        pending = {i: pool.apply_async(compress_job, (job,)) for i, job in enumerate(jobs)}
        while pending:
            for i in [i for i, result in pending.items() if result.ready()]:
                finished(i, pending.pop(i).get())
            if interrupt_requested():
                break
            time.sleep(_POLL_SECONDS)
    finally:
        pool.terminate()
        pool.join()


def _run_on_dask(jobs, scheduler, finished):
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise GIError("--scheduler needs Dask: pip install 'gi-numba[dask]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise GIError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        futures = client.map(compress_job, jobs, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        completed = dask_completed(futures)
        while not completed.is_empty() and not interrupt_requested():
            for future in completed.next_batch(block=False):
                finished(index[future.key], future.result())
            time.sleep(_POLL_SECONDS)
        client.cancel(futures)


#: How often a parallel run looks for finished jobs and for Ctrl-C.
_POLL_SECONDS = 0.05


def write_summary(path, rows) -> None:
    """Write the rows as CSV (:data:`SUMMARY_FIELDS`), atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue().encode())


def compress_dir(in_dir, out_dir, n_gaussians=None, bpp=None, iterations=None, seed=0, workers=1,
                 scheduler=None, on_row=None, recipe=None, lmbda=None) -> list:
    """Compress every image of ``in_dir`` into ``out_dir`` and write ``out_dir/summary.csv``; returns the rows.

    ``recipe``, ``iterations`` and ``lmbda`` (the rate weight) are :func:`~gi_numba.codec.compress`'s.

    On Ctrl-C, ``summary.csv`` gets the rows finished so far and
    :class:`~gi_numba.interrupt.Interrupted` is raised; running the same call
    again resumes (finished images are skipped).
    """
    if (n_gaussians is None) == (bpp is None):
        raise GIError("give either a number of Gaussians or a rate in bpp (exactly one)")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise GIError(f"{in_dir} is not a folder")
    if workers < 1:
        raise GIError(f"the number of workers must be at least 1, got {workers}")
    if n_gaussians is not None:
        check_number(n_gaussians, "the number of Gaussians", 1, integer=True)
    if bpp is not None:
        check_number(bpp, "the target rate (bpp)", 0, above=True)
    if iterations is not None:
        check_number(iterations, "iterations", 1, integer=True)
    check_number(seed, "the seed", 0, 2 ** 63 - 1, integer=True)
    if lmbda is not None:
        check_number(lmbda, "the rate weight lambda", 0)
    recipe_named(recipe or DEFAULT_RECIPE)
    make_folder(out_dir)
    check_writable(out_dir / "summary.csv")
    threads = 1 if (workers > 1 or scheduler is not None) else None
    jobs = jobs_for(in_dir, out_dir, n_gaussians, bpp, iterations, seed, threads, recipe, lmbda)
    rows = [row for row in run_jobs(jobs, workers, scheduler, on_row) if row is not None]
    summary = out_dir / "summary.csv"
    write_summary(summary, rows)
    if len(rows) < len(jobs):
        raise Interrupted(f"{len(rows)} of {len(jobs)} images done, listed in {summary}; "
                          "run the same command again to resume")
    return rows
