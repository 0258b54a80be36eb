"""Densification strategies: who is created, grown and pruned, and when (ALGORITHM.md §5)."""

from .densify import DensifyStrategy
from .ops import TrainState, add_gaussians, remove_gaussians

__all__ = ["DensifyStrategy", "TrainState", "add_gaussians", "remove_gaussians"]
