"""The ``.gi`` format versions: the one place a version number is looked at (docs/format.md).

A version is a coding (what the codes mean, :mod:`gi_numba.coding`), a
framing (how stream records are laid out, :mod:`.framing`), the entropy
models a file may use (:mod:`.models`) and how much smaller than the others
a Laplace-coded stream must be for the writer to choose it: the Laplace
model decodes at about 350 ns a symbol against 80 for a histogram, and
versions 2 and 3 take it only where it saves 5% (measured on 24 Kodak
files: 0.46% more bytes, parsing 3.5 -> 2.0 ms).
"""

from dataclasses import dataclass
from typing import Callable

from ..coding import CORRELATION_YCOCG, PAPER, Coding
from ..errors import CorruptFile
from .framing import COMPACT, INDEXED, Framing
from .models import FIXED, HISTOGRAM, LAPLACE, LOG_HISTOGRAM


@dataclass(frozen=True)
class Format:
    """One format version: its coding, framing, allowed models (in the writer's order of preference on a
    tie) and Laplace margin."""

    version: int
    coding: Coding
    framing: Framing
    models: tuple
    laplace_margin: float

    def ranking(self, sizes: dict) -> Callable:
        """The key by which the writer picks a model of ``sizes`` (by model): its size, a Laplace model's
        raised by the margin."""
        return lambda model: sizes[model] / (1.0 - self.laplace_margin if model is LAPLACE else 1.0)


FORMATS = {
    1: Format(1, PAPER, INDEXED, (FIXED, LAPLACE, HISTOGRAM), 0.0),
    2: Format(2, CORRELATION_YCOCG, INDEXED, (FIXED, LAPLACE, HISTOGRAM), 0.05),
    3: Format(3, CORRELATION_YCOCG, COMPACT, (FIXED, LAPLACE, LOG_HISTOGRAM), 0.05),
}
#: The versions this package reads and writes; the newest is the default encoder's.
VERSIONS = tuple(FORMATS)
VERSION = VERSIONS[-1]


def format_of(version: int) -> Format:
    """The :class:`Format` of ``version``, or :class:`~gi_numba.errors.CorruptFile` saying which are read."""
    if version not in FORMATS:
        raise CorruptFile(f".gi format version {version} is not supported (this gi-numba reads versions "
                          f"{', '.join(map(str, VERSIONS))})")
    return FORMATS[version]
