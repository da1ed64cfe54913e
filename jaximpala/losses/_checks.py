"""Shape and dtype contracts shared by the return estimators."""

from __future__ import annotations

import chex

Array = chex.Array


def check_time_major(sequences: list[Array], bootstrap_value: Array, mask: Array | None):
    """Asserts `[T, B, ...]` float sequences, a `[B, ...]` bootstrap and a matching mask."""
    chex.assert_rank(sequences, {1, 2, 3, 4, 5, 6})
    chex.assert_equal_shape(sequences)
    chex.assert_type([*sequences, bootstrap_value], float)
    chex.assert_equal_shape([sequences[0][0], bootstrap_value])
    if mask is not None:
        chex.assert_equal_shape([sequences[0], mask])


def clip_threshold(value: float | None) -> float:
    """`None` means no clipping; thresholds must be positive."""
    if value is None:
        return float("inf")
    if not value > 0:
        raise ValueError(f"clip thresholds must be > 0 (or None for no clipping), got {value}")
    return float(value)
