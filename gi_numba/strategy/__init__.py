"""Densification strategies: who is created, grown and pruned, and when (docs/algorithm.md §5).

:mod:`.base` is the interface the training loop uses (and the null and
prune-only strategies), :mod:`.densify` GaussianImage++'s schedule,
:mod:`.ops` the two changes to ``N`` that keep optimiser moments with their Gaussians.
"""

from .base import PruneStrategy, Strategy
from .densify import DensifyStrategy
from .ops import TrainState, add_gaussians, remove_gaussians

__all__ = ["DensifyStrategy", "PruneStrategy", "Strategy", "TrainState", "add_gaussians", "remove_gaussians"]
