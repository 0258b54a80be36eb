"""The method's numbers, each defined once (docs/algorithm.md §4-§6): the library, the codec, the batch runner and
the command line all import them from here.
"""

#: Training iterations of a fit (§4): the paper's schedule.
ITERATIONS = 50_000
#: Gaussian budget of ``gi fit`` when none is given.
N_GAUSSIANS = 5_000
#: Adam's learning rate for GaussianImage++ (§4).
LR = 0.018
#: The learning rate halves every ``LR_DECAY_FRACTION * iterations`` (20 000 of 50 000, §4).
LR_DECAY_FRACTION = 0.4
#: Growth every ``iterations // GROWTH_STEPS`` iterations (5 000 of 50 000, §5).
GROWTH_STEPS = 10
#: Pruning of Gaussians that are not positive definite every this many iterations (§5).
PRUNE_EVERY = 100
#: Gaussians added per growth step, at most (§5).
GROW_BATCH = 1_000
#: Quantisation-aware training runs for this fraction of the representation iterations (§6).
QAT_FRACTION = 0.2
#: Adam for the learned quantiser parameters during QAT: learning rate and halving interval (§6).
QAT_LR = 0.001
QAT_LR_DECAY_EVERY = 10_000
#: Bits per attribute (§6): 2 x 12 (position) + 2 x 10 (variances) + 10 (covariance) + 3 x 6 (colour) = 72.
BITS = dict(position=12, variance=10, covariance=10, colour=6)
#: Bits per attribute of a ``.gi`` version-2 file, our departure (docs/format.md): 12 (position), 6 (variances,
#: log-uniform), 6 (the covariance term as a correlation), 6 (colour in YCoCg) = 60 per Gaussian.
BITS_V2 = dict(position=12, variance=6, covariance=6, colour=6)
#: How many numbers of each attribute a Gaussian has (x, y; a', c'; b'; r, g, b).
ATTRIBUTE_SIZES = dict(position=2, variance=2, covariance=1, colour=3)


def fixed_bits_per_gaussian(bits=None) -> int:
    """Bits of one Gaussian coded at fixed length: 72 with the default depths."""
    bits = dict(BITS, **(bits or {}))
    return sum(ATTRIBUTE_SIZES[name] * depth for name, depth in bits.items())
