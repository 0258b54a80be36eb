"""Do two threads get two cores' worth of vector arithmetic on this machine, right now?

On a virtual machine the two vCPUs can be two hyperthreads of one physical
core. The two threads then share that core's floating-point units, and a
kernel bound by them (the rasteriser is) takes up to twice as long on two
threads, while a latency-bound or memory-bound test shows no change. The
host can move the vCPUs at any time, so the state can change within a run.

Every few seconds this prints the time of a training pass (the
``trained`` state of ``bench_raster.py``) beside a loop that only does
float32 multiply-adds, run on one and on two threads. ``cores`` is
``2 * t1 / t2``: near 2 when each thread has a core of its own, near 1 when
they share one. Read fit and kernel timings against it.

    python benchmarks/bench_cores.py [--seconds 60] [--json]
"""

import argparse
import json
import sys
import time

import numba
import numpy as np

from bench_raster import DEFAULT_IMAGE, make_state
from gi_numba.image_io import load_image
from gi_numba.raster import make_rasterizer


@numba.njit(parallel=True, fastmath=True, cache=True)
def multiply_adds(x, repeats, out):
    """Throughput-bound float32 arithmetic: each of ``out.shape[0]`` threads runs ``repeats`` rounds on ``x``."""
    for thread in numba.prange(out.shape[0]):
        for _ in range(repeats):
            for k in range(x.size):
                y = x[k]
                for _ in range(8):
                    y = ((y * np.float32(0.5) + np.float32(0.25)) * y + np.float32(0.125)) * y + np.float32(0.0625)
                out[thread, k] += y


def timed_ms(fn, calls=1):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return 1e3 * (time.perf_counter() - start) / calls


class CoreProbe:
    """Times :func:`multiply_adds` on one and on two threads each time it is called.

    Callable with any arguments, so it can be a fit's ``progress`` callback;
    ``seconds`` is the time it has taken, to subtract from a timed fit.
    """

    def __init__(self, repeats=20_000):
        self.x = np.random.default_rng(0).uniform(0, 1, 256).astype(np.float32)
        self.one, self.two = np.zeros((1, self.x.size), np.float32), np.zeros((2, self.x.size), np.float32)
        self.repeats, self.samples, self.seconds = repeats, [], 0.0
        multiply_adds(self.x, 1, self.one)
        multiply_adds(self.x, 1, self.two)

    def __call__(self, *_):
        start = time.perf_counter()
        t1 = timed_ms(lambda: multiply_adds(self.x, self.repeats, self.one))
        t2 = timed_ms(lambda: multiply_adds(self.x, self.repeats, self.two))
        self.samples.append((t1, t2))
        self.seconds += time.perf_counter() - start
        return t1, t2

    def cores(self):
        """Median of ``2 t1 / t2`` over the samples: about 2 with a core per thread, 1 with one shared core."""
        return float(np.median([2 * t1 / t2 for t1, t2 in self.samples]))

    def two_thread_ms(self):
        """Median two-thread time: the same on a quiet machine, longer when the host gives us less."""
        return float(np.median([t2 for _, t2 in self.samples]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    args = parser.parse_args(argv)

    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    target, _ = load_image(DEFAULT_IMAGE)
    height, width = target.shape[:2]
    rasterizer = make_rasterizer("cpu", height, width)
    rasterizer.set_target(target.transpose(2, 0, 1))
    params, lam = make_state("trained", 5000, height, width, np.random.default_rng(0))
    rasterizer.loss_and_gradients(params, lam)
    probe = CoreProbe(repeats=40_000)

    samples = []
    if not args.json:
        print(f"{'s':>6} {'pass ms':>8} {'fma 1 thread ms':>16} {'fma 2 threads ms':>17} {'cores':>6}")
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        pass_ms = timed_ms(lambda: rasterizer.loss_and_gradients(params, lam), 100)
        t1, t2 = probe()
        sample = dict(s=round(time.perf_counter() - start, 1), pass_ms=round(pass_ms, 3), fma1_ms=round(t1, 2),
                      fma2_ms=round(t2, 2), cores=round(2 * t1 / t2, 2))
        samples.append(sample)
        if not args.json:
            print(f"{sample['s']:6.1f} {pass_ms:8.3f} {t1:16.2f} {t2:17.2f} {sample['cores']:6.2f}", flush=True)
    if args.json:
        print(json.dumps(dict(samples=samples)))


if __name__ == "__main__":
    sys.exit(main())
