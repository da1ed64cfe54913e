"""Value losses (squared, Huber, PPO-style clipping) and explained variance.

Value clipping: Schulman et al. 2017's baselines implementation (PPO2), studied in
Engstrom et al. 2020, "Implementation Matters in Deep RL", https://arxiv.org/abs/2005.12729.
"""

from __future__ import annotations

from typing import Literal

import chex
import jax
import jax.numpy as jnp

from jaximpala.losses.masking import masked_fraction, masked_mean, masked_var

Array = chex.Array
LossType = Literal["squared", "huber"]


def explained_variance(values: Array, targets: Array, *, mask: Array | None = None) -> Array:
    """`1 - Var[targets - values] / Var[targets]` over valid entries; 0 if targets are constant.

    1 is a perfect critic, 0 is no better than a constant, negative is worse.
    `values`, `targets`, `mask`: `[T, B, ...]`.
    """
    chex.assert_equal_shape([values, targets])
    values, targets = jax.lax.stop_gradient((values, targets))
    target_var = masked_var(targets, mask)
    residual_var = masked_var(targets - values, mask)
    safe_var = jnp.where(target_var > 0, target_var, 1.0)
    return jnp.where(target_var > 0, 1.0 - residual_var / safe_var, 0.0)


def _elementwise(errors: Array, loss_type: LossType, huber_delta: float) -> Array:
    if loss_type == "squared":
        return 0.5 * jnp.square(errors)
    if loss_type == "huber":
        abs_errors = jnp.abs(errors)
        quadratic = jnp.minimum(abs_errors, huber_delta)
        return 0.5 * jnp.square(quadratic) + huber_delta * (abs_errors - quadratic)
    raise ValueError(f"loss_type must be 'squared' or 'huber', got {loss_type!r}")


def value_loss(
    values: Array,
    targets: Array,
    *,
    mask: Array | None = None,
    loss_type: LossType = "squared",
    huber_delta: float = 1.0,
    old_values: Array | None = None,
    clip_epsilon: float | None = None,
) -> tuple[Array, dict[str, Array]]:
    """Regresses `values` onto stopped-gradient `targets` (V-trace `vs` or GAE returns).

    Args:
      values: `[T, B, ...]` current value predictions.
      targets: `[T, B, ...]` value targets (gradient is stopped).
      mask: optional `[T, B, ...]` valid transitions.
      loss_type: ``"squared"`` (`0.5 e^2`) or ``"huber"`` (quadratic within `huber_delta`).
      huber_delta: the Huber threshold.
      old_values: `[T, B, ...]` predictions of the policy that collected the data; with
        `clip_epsilon`, enables PPO value clipping: the loss is the max of the unclipped
        and the clipped (`old + clip(v - old, -eps, eps)`) errors.
      clip_epsilon: the value-clipping range (requires `old_values`).

    Returns:
      `(loss, metrics)` with `value_loss`, `explained_variance`, `value_mean`,
      `target_mean`, and `value_clip_fraction` when clipping.
    """
    chex.assert_equal_shape([values, targets])
    if (old_values is None) != (clip_epsilon is None):
        raise ValueError("value clipping needs both old_values and clip_epsilon (or neither)")
    targets = jax.lax.stop_gradient(targets)
    per_step = _elementwise(values - targets, loss_type, huber_delta)
    metrics = {}
    if clip_epsilon is not None:
        chex.assert_equal_shape([values, old_values])
        old_values = jax.lax.stop_gradient(old_values)
        clipped_values = old_values + jnp.clip(values - old_values, -clip_epsilon, clip_epsilon)
        clipped_per_step = _elementwise(clipped_values - targets, loss_type, huber_delta)
        metrics["value_clip_fraction"] = masked_fraction(clipped_per_step > per_step, mask)
        per_step = jnp.maximum(per_step, clipped_per_step)
    loss = masked_mean(per_step, mask)
    metrics.update({
        "value_loss": loss,
        "explained_variance": explained_variance(values, targets, mask=mask),
        "value_mean": masked_mean(jax.lax.stop_gradient(values), mask),
        "target_mean": masked_mean(targets, mask),
    })
    return loss, metrics
