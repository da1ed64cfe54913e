"""Policy losses: (V-trace) policy gradient, PPO clipped surrogate with dual clip, entropy.

Every loss returns `(loss, metrics)`; metrics are scalars a researcher debugs with.

- Policy gradient with V-trace advantages: Espeholt et al. 2018, https://arxiv.org/abs/1802.01561
- Clipped surrogate: Schulman et al. 2017, "Proximal Policy Optimization Algorithms",
  https://arxiv.org/abs/1707.06347 (equation 7).
- Dual clip: Ye et al. 2020, "Mastering Complex Control in MOBA Games with Deep
  Reinforcement Learning", https://arxiv.org/abs/1912.09729 (equation 5).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaximpala.losses._checks import clip_threshold
from jaximpala.losses.kl import sample_kl
from jaximpala.losses.masking import (
    masked_fraction,
    masked_max,
    masked_mean,
    masked_min,
    masked_var,
)

Array = chex.Array
Metrics = dict[str, Array]


def importance_weight_metrics(
    log_rhos: Array,
    *,
    mask: Array | None = None,
    clip_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
) -> Metrics:
    """Statistics of `rho = pi/mu` and how often each V-trace clip binds.

    Args:
      log_rhos: `[T, B, ...]` `log pi(a|x) - log mu(a|x)`.
      mask: optional `[T, B, ...]` valid transitions.
      clip_*_threshold: the V-trace thresholds (None: no clipping).

    Returns:
      `rho_mean`, `rho_max`, `rho_min`, the clipped fractions `rho_clipped_fraction`,
      `c_clipped_fraction`, `pg_rho_clipped_fraction`, and `kl_behaviour_target`, an unbiased
      estimate of KL(mu || pi) from samples of mu.
    """
    log_rhos = jax.lax.stop_gradient(log_rhos)
    rhos = jnp.exp(log_rhos)
    return {
        "rho_mean": masked_mean(rhos, mask),
        "rho_max": masked_max(rhos, mask),
        "rho_min": masked_min(rhos, mask),
        "rho_clipped_fraction": masked_fraction(rhos > clip_threshold(clip_rho_threshold), mask),
        "c_clipped_fraction": masked_fraction(rhos > clip_threshold(clip_c_threshold), mask),
        "pg_rho_clipped_fraction": masked_fraction(
            rhos > clip_threshold(clip_pg_rho_threshold), mask),
        "kl_behaviour_target": masked_mean(sample_kl(log_rhos), mask),
    }


def policy_gradient_loss(
    log_probs: Array,
    advantages: Array,
    *,
    mask: Array | None = None,
    log_rhos: Array | None = None,
    clip_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
) -> tuple[Array, Metrics]:
    """`-mean(log pi(a|x) * A)` with stopped-gradient advantages (e.g. V-trace's).

    Args:
      log_probs: `[T, B, ...]` `log pi(a_t|x_t)` under the policy being trained.
      advantages: `[T, B, ...]`, e.g. `VTraceReturns.pg_advantages` (gradient is stopped).
      mask: optional `[T, B, ...]` valid transitions; the mean is over these only.
      log_rhos: optional `[T, B, ...]`; when given, importance-weight metrics are added.
      clip_*_threshold: only used for the importance-weight metrics.

    Returns:
      `(loss, metrics)` with `pg_loss`, `advantage_mean`, `advantage_std` (and the
      `importance_weight_metrics` when `log_rhos` is given).
    """
    chex.assert_equal_shape([log_probs, advantages])
    advantages = jax.lax.stop_gradient(advantages)
    loss = -masked_mean(log_probs * advantages, mask)
    metrics = {
        "pg_loss": loss,
        "advantage_mean": masked_mean(advantages, mask),
        "advantage_std": jnp.sqrt(masked_var(advantages, mask)),
    }
    if log_rhos is not None:
        chex.assert_equal_shape([log_probs, log_rhos])
        metrics.update(importance_weight_metrics(
            log_rhos, mask=mask, clip_rho_threshold=clip_rho_threshold,
            clip_c_threshold=clip_c_threshold, clip_pg_rho_threshold=clip_pg_rho_threshold,
        ))
    return loss, metrics


def ppo_clip_loss(
    log_probs: Array,
    behaviour_log_probs: Array,
    advantages: Array,
    *,
    clip_epsilon: float = 0.2,
    dual_clip: float | None = None,
    mask: Array | None = None,
) -> tuple[Array, Metrics]:
    """PPO's clipped surrogate, `-mean(min(r A, clip(r, 1-eps, 1+eps) A))`.

    Args:
      log_probs: `[T, B, ...]` `log pi(a|x)` under the policy being trained.
      behaviour_log_probs: `[T, B, ...]` `log pi_old(a|x)` (gradient is stopped).
      advantages: `[T, B, ...]` (gradient is stopped).
      clip_epsilon: the trust-region half width `eps`.
      dual_clip: optional `c > 1`; for negative advantages the objective is bounded below
        by `c * A`, so a huge ratio on a bad action cannot dominate the update.
      mask: optional `[T, B, ...]` valid transitions.

    Returns:
      `(loss, metrics)` with `ppo_loss`, `clip_fraction` (ratio outside the trust region),
      `approx_kl` (unbiased KL(pi_old || pi) estimate), `ratio_mean`, `ratio_max`, and
      `dual_clip_fraction` when `dual_clip` is set.
    """
    chex.assert_equal_shape([log_probs, behaviour_log_probs, advantages])
    if not clip_epsilon > 0:
        raise ValueError(f"clip_epsilon must be > 0, got {clip_epsilon}")
    if dual_clip is not None and not dual_clip > 1:
        raise ValueError(f"dual_clip must be > 1 (or None), got {dual_clip}")
    advantages = jax.lax.stop_gradient(advantages)
    log_ratio = log_probs - jax.lax.stop_gradient(behaviour_log_probs)
    ratio = jnp.exp(log_ratio)
    clipped_ratio = jnp.clip(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon)
    objective = jnp.minimum(ratio * advantages, clipped_ratio * advantages)
    metrics = {}
    if dual_clip is not None:
        floor = dual_clip * advantages
        dual_clipped = (advantages < 0) & (objective < floor)
        objective = jnp.where(advantages < 0, jnp.maximum(objective, floor), objective)
        metrics["dual_clip_fraction"] = masked_fraction(dual_clipped, mask)
    loss = -masked_mean(objective, mask)
    ratio_sg = jax.lax.stop_gradient(ratio)
    metrics.update({
        "ppo_loss": loss,
        "clip_fraction": masked_fraction(jnp.abs(ratio_sg - 1.0) > clip_epsilon, mask),
        "approx_kl": masked_mean(sample_kl(jax.lax.stop_gradient(log_ratio)), mask),
        "ratio_mean": masked_mean(ratio_sg, mask),
        "ratio_max": masked_max(ratio_sg, mask),
    })
    return loss, metrics


def entropy_loss(entropy: Array, *, mask: Array | None = None) -> tuple[Array, Metrics]:
    """`-mean(entropy)`: minimising it raises the policy's entropy (weight it by a coefficient).

    Args:
      entropy: `[T, B, ...]` per-step policy entropy.
      mask: optional `[T, B, ...]` valid transitions.

    Returns:
      `(loss, metrics)` with `entropy` (the masked mean) and `entropy_loss`.
    """
    mean_entropy = masked_mean(entropy, mask)
    return -mean_entropy, {"entropy": mean_entropy, "entropy_loss": -mean_entropy}
