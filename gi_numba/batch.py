"""Compress whole folders: one ``.gi`` per image and a ``summary.csv``, locally or on a Dask cluster.

Each image is one independent job (:func:`compress_job`): it reads its input,
writes its ``.gi`` atomically and returns one summary row, so jobs can run in
any process — local worker processes (:mod:`concurrent.futures`) or the
workers of an existing Dask distributed cluster; the caller only gathers rows.

A job whose output already exists and decodes is skipped (its row is
measured from the file), so rerunning after a crash or Ctrl-C loses nothing.
A job that fails (an unreadable image, say) gives a row with status
``error`` and the message, and the others carry on.
"""

import csv
import io
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numba

from . import bitstream
from .codec import compress, compress_to_rate, decoded_model
from .errors import GIError
from .fileio import make_folder, write_atomically
from .image_io import load_image
from .metrics import ms_ssim, psnr

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
    iterations: int = 50_000
    seed: int = 0
    threads: int | None = None  # Numba threads inside the job; None leaves the process's setting


def image_files(folder):
    """The images directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def jobs_for(in_dir, out_dir, n_gaussians=None, bpp=None, iterations=50_000, seed=0, threads=None):
    """One :class:`Job` per image of ``in_dir``; outputs are ``out_dir/<name>.gi``."""
    return [Job(str(p), str(Path(out_dir) / (p.stem + ".gi")), n_gaussians, bpp, iterations, seed, threads)
            for p in image_files(in_dir)]


def compress_job(job):
    """Run one :class:`Job` and return its summary row (a dict with :data:`SUMMARY_FIELDS`)."""
    if job.threads:
        numba.set_num_threads(min(job.threads, numba.config.NUMBA_NUM_THREADS))
    row = dict.fromkeys(SUMMARY_FIELDS, "")
    row["file"] = Path(job.source).name
    start = time.perf_counter()
    try:
        target, _ = load_image(job.source)
        row["height"], row["width"] = target.shape[:2]
        data = _existing(job.output)
        row["status"] = "skipped" if data is not None else "ok"
        if data is None:
            if job.bpp is not None:
                data, _ = compress_to_rate(job.source, job.bpp, iterations=job.iterations, seed=job.seed)
            else:
                data = compress(job.source, job.n_gaussians, iterations=job.iterations, seed=job.seed)
            write_atomically(job.output, data)
        model = decoded_model(data)
        decoded = model.render()
        row.update(n_gaussians=model.n_gaussians, bytes=len(data),
                   bpp=round(8.0 * len(data) / (target.shape[0] * target.shape[1]), 5),
                   psnr=round(psnr(decoded, target), 4), ms_ssim=_rounded(ms_ssim(decoded, target)))
    except GIError as exc:
        row.update(status="error", error=str(exc))
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


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


def run_jobs(jobs, workers=1, scheduler=None, on_row=None):
    """Run ``jobs`` and return their rows in job order.

    ``workers > 1`` runs them in that many local processes (give the jobs
    ``threads=1`` so the processes do not compete for cores); ``scheduler`` (``tcp://host:port``) submits them to a Dask
    distributed cluster instead. ``on_row(row)`` is called as each finishes.
    """
    rows = [None] * len(jobs)

    def finished(index, row):
        rows[index] = row
        if on_row is not None:
            on_row(row)

    if scheduler is not None:
        _run_on_dask(jobs, scheduler, finished)
    elif workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(compress_job, job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    else:
        for i, job in enumerate(jobs):
            finished(i, compress_job(job))
    return rows


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
        for future in dask_completed(futures):
            finished(index[future.key], future.result())


def write_summary(path, rows):
    """Write the rows as CSV (:data:`SUMMARY_FIELDS`), atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue().encode())


def compress_dir(in_dir, out_dir, n_gaussians=None, bpp=None, iterations=50_000, seed=0, workers=1,
                 scheduler=None, on_row=None):
    """Compress every image of ``in_dir`` into ``out_dir`` and write ``out_dir/summary.csv``; returns the rows."""
    if (n_gaussians is None) == (bpp is None):
        raise GIError("give either a number of Gaussians or a rate in bpp (exactly one)")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise GIError(f"{in_dir} is not a folder")
    if workers < 1:
        raise GIError(f"the number of workers must be at least 1, got {workers}")
    make_folder(out_dir)
    threads = 1 if (workers > 1 or scheduler is not None) else None
    jobs = jobs_for(in_dir, out_dir, n_gaussians, bpp, iterations, seed, threads)
    rows = run_jobs(jobs, workers, scheduler, on_row)
    write_summary(out_dir / "summary.csv", rows)
    return rows
