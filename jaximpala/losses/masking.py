"""Masked reductions shared by every loss.

`mask` marks valid transitions (True/1 = counts). Reductions use `jnp.where`, not
multiplication, so a NaN or inf in an invalid slot (e.g. the log-prob of an action the
environment ignored on its autoreset step) never leaks into a loss or its gradient.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

Array = chex.Array


def valid_mask(x: Array, mask: Array | None) -> Array:
    """Returns a boolean mask shaped like `x` (all True when `mask` is None).

    Args:
      x: array of any shape `[T, B, ...]`.
      mask: None, or an array of the same shape as `x` (bool or 0/1 floats).
    """
    if mask is None:
        return jnp.ones(jnp.shape(x), dtype=bool)
    chex.assert_equal_shape([x, mask])
    return jnp.asarray(mask).astype(bool)


def where_valid(valid: Array | None, x: Array) -> Array:
    """`x` where `valid` (a boolean mask or None for all-valid), else 0."""
    if valid is None:
        return x
    return jnp.where(valid, x, jnp.zeros_like(x))


def masked_sum(x: Array, mask: Array | None) -> Array:
    """Sum of `x` over the valid entries. `x`, `mask`: same shape."""
    m = valid_mask(x, mask)
    return jnp.sum(jnp.where(m, x, jnp.zeros_like(x)))


def masked_count(x: Array, mask: Array | None) -> Array:
    """Number of valid entries, as a float of `x`'s dtype."""
    return jnp.sum(valid_mask(x, mask)).astype(jnp.result_type(x, jnp.float32))


def masked_mean(x: Array, mask: Array | None) -> Array:
    """Mean of `x` over the valid entries; 0 when there are none."""
    count = masked_count(x, mask)
    return masked_sum(x, mask) / jnp.maximum(count, 1.0)


def masked_var(x: Array, mask: Array | None) -> Array:
    """Population variance of `x` over the valid entries; 0 when there are none."""
    mean = masked_mean(x, mask)
    return masked_mean(jnp.square(x - mean), mask)


def masked_max(x: Array, mask: Array | None) -> Array:
    """Max of `x` over the valid entries; -inf when there are none."""
    m = valid_mask(x, mask)
    return jnp.max(jnp.where(m, x, -jnp.inf))


def masked_min(x: Array, mask: Array | None) -> Array:
    """Min of `x` over the valid entries; +inf when there are none."""
    m = valid_mask(x, mask)
    return jnp.min(jnp.where(m, x, jnp.inf))


def masked_fraction(condition: Array, mask: Array | None) -> Array:
    """Fraction of valid entries where `condition` holds (float32)."""
    return masked_mean(condition.astype(jnp.float32), mask)
