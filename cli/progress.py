"""Progress on stderr: a one-line bar for fits (iteration, PSNR, Gaussians, ETA), a counter for folders.

On a terminal the line redraws in place a few times a second; otherwise (a
log file, CI) a plain line is printed every tenth of the run.
"""

import sys
import time


def format_seconds(seconds):
    """``75`` -> ``1m15s``; ``3725`` -> ``1h02m``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class ProgressBar:
    """Callable for :func:`gi_numba.fit`'s ``progress`` argument."""

    def __init__(self, stream=None, width=24, interval=0.2):
        self.stream = stream or sys.stderr
        self.width = width
        self.interval = interval
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_draw = 0.0
        self._last_tenth = -1
        self._phase = None
        self._drawn = False

    def __call__(self, p):
        if p.phase != self._phase:  # an encoder's warm-up, then its QAT: each gets its own tenths
            self._phase, self._last_tenth = p.phase, -1
        done = p.iteration / p.iterations
        if self.live:
            now = time.monotonic()
            if now - self._last_draw < self.interval and p.iteration < p.iterations:
                return
            self._last_draw = now
            filled = int(done * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {self._fields(p)}  ")
            self._drawn = True
        else:
            tenth = int(done * 10)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(self._fields(p) + "\n")
        self.stream.flush()

    @staticmethod
    def _fields(p):
        return (f"{p.phase} {p.iteration}/{p.iterations}  PSNR {p.psnr:.2f} dB  Gaussians {p.n_gaussians}  "
                f"ETA {format_seconds(p.eta)}")

    def close(self):
        """End the redrawn line so later output starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class FolderProgress:
    """Counts finished images of ``gi compress-dir`` on stderr (one line per image)."""

    def __init__(self, total, stream=None):
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.start = time.monotonic()

    def __call__(self, row):
        self.done += 1
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        detail = row["error"] if row["status"] == "error" else f"{row['bpp']} bpp, {row['psnr']} dB"
        self.stream.write(f"[{self.done}/{self.total}] {row['file']}: {row['status']} ({detail})  "
                          f"ETA {format_seconds(eta)}\n")
        self.stream.flush()
