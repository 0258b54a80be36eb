"""The rate term of rate-distortion training: ``D + lambda R`` in quantisation-aware training (our departure,
docs/recipes.md, "The file's rate in QAT's loss").

``D`` is the mean squared error of the decoded image (values in ``[0, 1]``)
and ``R`` its file's bits per pixel, so ``lambda`` is in MSE per bpp: the
rasteriser's gradients are the MSE's, to which the rate adds ``lambda / (H W)``
per bit, and the squared error training compares states by (the sum over
3 values per pixel) gets ``3 lambda`` per bit.

The bits are the coder's own: :func:`gi_numba.bitstream.estimated_streams`
estimates, stream by stream, what the file will take under the model the
writer will pick (within a fraction of a percent of the real bytes). Their
gradients follow the streams that are entropy-coded (a fixed-length stream
costs the same whatever its codes); positions get none (the sorted set coding
costs about the same wherever the Gaussians are). For each code ``q`` of
such a stream, with ``u = (v - beta) / s`` before rounding, the code length
``L(q) = -log2 p(q)`` under the stream's (lightly smoothed) histogram has a
slope ``dL/du`` — straight through the rounding, as the distortion's
gradient — so ``dR/dv = L'(q) / s``: each value is drawn toward the codes
its stream uses most. A learned step ``s`` gets the high-rate estimate
``dR/ds = -n / (s ln 2)`` (a coarser step spreads the stream's ``n`` values
over fewer codes).
"""

from dataclasses import dataclass

import numpy as np

from .bitstream import estimated_file_bits, estimated_streams, format_of
from .coding import LOG_EPS

#: The loss sums the squared error of this many values per pixel (RGB).
VALUES_PER_PIXEL = 3
#: The histogram of a stream's codes is smoothed by this kernel before its code lengths are differentiated.
_SMOOTHING = np.array([0.25, 0.5, 0.25])


def code_length_slopes(codes, nbits) -> np.ndarray:
    """``dL/du`` at each of ``codes`` (an int column): the slope of ``L(q) = -log2 p(q)`` under the codes'
    smoothed histogram over the alphabet ``0 .. 2^nbits - 1`` (one-sided at its ends)."""
    counts = np.bincount(codes, minlength=2 ** nbits).astype(np.float64)
    smoothed = np.convolve(counts, _SMOOTHING, mode="same") + 0.5
    lengths = -np.log2(smoothed / smoothed.sum())
    return np.gradient(lengths)[codes]


@dataclass(frozen=True)
class RateTerm:
    """``lambda R`` of the loss ``D + lambda R``: its value and its gradients, from one QAT forward pass.

    ``pixels`` is the image's ``H W``. The map measures each forward pass's
    codes once (:meth:`measure`, kept as ``result.streams`` of the
    :class:`~gi_numba.quantize.Quantised`), and the value and gradients read that.
    """

    lmbda: float
    pixels: int

    @property
    def weight(self) -> float:
        """The MSE's units per bit of the file: ``lambda / (H W)``."""
        return self.lmbda / self.pixels

    def measure(self, result) -> list:
        """The streams the codes of ``result`` make: ``[(name, model, estimated bits)]`` in file order."""
        return estimated_streams(result.gaussians())

    def penalty(self, result) -> float:
        """``lambda R`` in units of the squared error summed over the image: ``3 lambda`` per bit of the file."""
        return VALUES_PER_PIXEL * self.lmbda * estimated_file_bits(result.streams)

    def add_gradients(self, result, through, own) -> None:
        """Add the rate's gradients to those of the coded values before quantisation (``through``, by
        attribute) and to those of the learned quantiser parameters (``own``)."""
        q = result.quantizers
        models = {name: model for name, model, _ in result.streams}
        for a in format_of(q.version).coding.attributes:
            if a.name == "position":
                continue
            codes = result.codes[a.name].astype(np.int64)
            step = getattr(q, f"{a.name}_step")
            nbits = q.bits[a.name]
            coded = np.array([models[name] != "fixed" for name in a.streams])
            slopes = np.zeros(codes.shape)
            for column in np.flatnonzero(coded):
                slopes[:, column] = code_length_slopes(codes[:, column], nbits)
            if a.kind == "lsq":
                inside = (result.scaled[a.name] >= -0.5) & (result.scaled[a.name] <= 2 ** nbits - 0.5)
                through[a.name] = through[a.name] + self.weight * np.where(inside, slopes / step, 0.0)
                own[f"{a.name}_step"] = (own[f"{a.name}_step"]
                                         - self.weight * coded * inside.sum(axis=0) / (step * np.log(2.0)))
            else:
                values = result.inputs[a.name]
                through[a.name] = through[a.name] + (self.weight * slopes / step * np.sign(values)
                                                     / (np.abs(values) + LOG_EPS))
