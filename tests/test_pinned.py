"""Fixed seeds give fixed bits: results pinned so that a refactor cannot change them unnoticed.

A 2 000-iteration fit of a Kodak image on one and on two threads, and a
``-n 500 --iterations 2000`` encode, must stay exactly equal. The kernels are
compiled for the host's processor (Numba targets its vector units, and the
fast-math sums are reassociated to their width), so the same code gives other
float bits on another processor family: the bits are pinned per LLVM host CPU
name. Hosts not listed expect the values computed at 3042820 (before the
training engine was restructured), which every host until 2026-12-06 gave;
``znver5`` (AMD EPYC with AVX-512) gives its own, computed at 65833c4 and
equal at 5d94411. A change that means to alter results updates them here,
saying why; a new processor family gets its own entry, computed at a commit
whose pins pass elsewhere.
"""

import hashlib
from typing import NamedTuple

import llvmlite.binding as llvm
import numba
import numpy as np
import pytest

import gi_numba
from conftest import KODAK
from gi_numba.codec import compress

IMAGE = KODAK / "kodak" / "kodim05.png"


class Pins(NamedTuple):
    fit_sha256: str
    fit_psnr: float
    encoded_sha256: str
    encoded_bytes: int


#: The values of the hosts before 2026-12-06 (computed at 3042820).
EARLIER_HOSTS = Pins("be445d4db30d8f85fc04161bc4a51d1ebf044ada42cc4b269ba9215e0d9a1eaf", 19.12665759918732,
                     "f17f688666a1acfea991b70aebcb36529b81fa1d28934dd98757cb98a1f9733b", 4203)
#: Processor families whose kernels give other bits, by LLVM host CPU name.
BY_CPU = {
    "znver5": Pins("28aead699d9db8d7d21c21a0eabd058701e6ef58c41f9653f5948b167de39bf5", 19.126128695869177,
                   "6ad2437b128122be36376eeb6cc8b25552f39b9d376adf32a5de728d41b5dd24", 4196),
}
PINS = BY_CPU.get(numba.config.CPU_NAME or llvm.get_host_cpu_name(), EARLIER_HOSTS)

pytestmark = pytest.mark.skipif(not IMAGE.exists(), reason="needs the Kodak images beside the repository")


def _sha256(*arrays):
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("threads", [1, 2])
def test_a_fit_is_bit_for_bit_what_it_was(threads):
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        model = gi_numba.fit(IMAGE, 2000, iterations=2000, seed=0, recipe="paper")
    finally:
        numba.set_num_threads(previous)
    assert (model.n_gaussians, model.iteration) == (2000, 2000)
    assert _sha256(model.params, model.lam) == PINS.fit_sha256
    assert model.psnr == pytest.approx(PINS.fit_psnr, abs=1e-12)  # a float sum: its last bit follows the threads


def test_an_encode_is_byte_for_byte_what_it_was():
    data = compress(IMAGE, 500, iterations=2000, seed=0, recipe="paper")
    assert (len(data), hashlib.sha256(data).hexdigest()) == (PINS.encoded_bytes, PINS.encoded_sha256)
