"""The content of a ``.gi`` file: integer codes of ``N`` Gaussians and the parameters that de-quantise them."""

from dataclasses import dataclass

import numpy as np

from .coding import PAPER, ROLES


def float32(x) -> np.ndarray:
    """Round to float32 (as stored in a file) but keep computing in float64."""
    return np.asarray(x, np.float32).astype(np.float64)


@dataclass
class QuantizerParams:
    """Everything besides the codes that the decoder needs to de-quantise (stored as float32).

    Each attribute (by role, :data:`~gi_numba.coding.ROLES`) has a step and
    an offset (``<role>_step``, ``<role>_offset``): learned for the LSQ+
    attributes, the data's log range for the variances. ``version`` is the
    file format whose coding they quantise
    (:data:`gi_numba.bitstream.formats.FORMATS`).
    """

    bits: dict
    position_step: np.ndarray
    position_offset: np.ndarray
    variance_step: np.ndarray
    variance_offset: np.ndarray
    covariance_step: np.ndarray
    covariance_offset: np.ndarray
    colour_step: np.ndarray
    colour_offset: np.ndarray
    version: int = 1

    ARRAYS = tuple(f"{role}_{part}" for role in ROLES for part in ("step", "offset"))
    #: The parameters quantisation-aware training learns: those of the LSQ+ attributes (the same in every coding).
    LEARNED = tuple(f"{a.name}_{part}" for a in PAPER.attributes if a.kind == "lsq" for part in ("step", "offset"))

    def copy(self) -> "QuantizerParams":
        """An independent copy, every parameter rounded to float32 as a file stores them."""
        return QuantizerParams(dict(self.bits), **{k: float32(getattr(self, k)) for k in self.ARRAYS},
                               version=self.version)


@dataclass
class QuantizedGaussians:
    """Integer codes of ``N`` Gaussians plus their quantiser parameters: the content of a file.

    The codes are uint16, by role, in the coordinates of the file's coding
    (:mod:`gi_numba.coding`): for the correlation + YCoCg coding of versions
    2 and 3, ``covariance`` holds the codes of ``atanh`` of the correlation
    and ``colour`` those of Y, Co, Cg.
    """

    quantizers: QuantizerParams
    position: np.ndarray    # [N, 2] codes of x, y
    variance: np.ndarray    # [N, 2] codes of ln a', ln c'
    covariance: np.ndarray  # [N, 1] codes of b' (paper) or atanh of the correlation
    colour: np.ndarray      # [N, 3] codes of r, g, b (paper) or Y, Co, Cg

    @property
    def n_gaussians(self) -> int:
        return int(self.position.shape[0])

    def columns(self) -> dict:
        """The code arrays by role."""
        return {role: getattr(self, role) for role in ROLES}

    def sorted_by_position(self) -> "QuantizedGaussians":
        """The same Gaussians in row-major order of their quantised position (the order a file stores)."""
        order = np.lexsort((self.position[:, 0], self.position[:, 1]))
        return QuantizedGaussians(self.quantizers, *(codes[order] for codes in self.columns().values()))
