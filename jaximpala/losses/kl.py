"""KL estimates, the KL penalty, and the adaptive-KL coefficient controller.

- Sample KL estimator `(r - 1) - log r`: Schulman 2020, "Approximating KL Divergence",
  http://joschu.net/blog/kl-approx.html (the "k3" estimator: unbiased and non-negative).
- Adaptive KL penalty: Schulman et al. 2017, https://arxiv.org/abs/1707.06347 (Section 4).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp

from jaximpala.losses.masking import masked_mean

Array = chex.Array


def sample_kl(log_ratio: Array) -> Array:
    """Per-sample estimate of KL(mu || pi) from actions drawn from mu.

    Args:
      log_ratio: `[T, B, ...]` `log pi(a|x) - log mu(a|x)` with `a ~ mu`.

    Returns:
      `[T, B, ...]` `(r - 1) - log r` with `r = exp(log_ratio)`; its mean under mu is the KL.
    """
    return jnp.expm1(log_ratio) - log_ratio


def kl_penalty_loss(kl: Array, *, coef: float | Array,
                    mask: Array | None = None) -> tuple[Array, dict[str, Array]]:
    """`coef * mean(kl)`: the fixed or adaptive KL penalty term.

    Args:
      kl: `[T, B, ...]` per-step KL (analytic between distributions, or `sample_kl`).
      coef: the penalty coefficient beta (a float, or `AdaptiveKLState.coef`).
      mask: optional `[T, B, ...]` valid transitions.

    Returns:
      `(loss, metrics)` with `kl` (masked mean), `kl_coef` and `kl_loss`.
    """
    mean_kl = masked_mean(kl, mask)
    loss = coef * mean_kl
    return loss, {"kl": mean_kl, "kl_coef": jnp.asarray(coef, mean_kl.dtype), "kl_loss": loss}


class AdaptiveKLState(NamedTuple):
    """coef: scalar penalty coefficient beta."""

    coef: Array


def adaptive_kl_init(initial_coef: float = 1.0) -> AdaptiveKLState:
    if not initial_coef > 0:
        raise ValueError(f"initial_coef must be > 0, got {initial_coef}")
    return AdaptiveKLState(coef=jnp.asarray(initial_coef, jnp.float32))


def adaptive_kl_update(
    state: AdaptiveKLState,
    kl: Array,
    *,
    target: float,
    tolerance: float = 1.5,
    factor: float = 2.0,
    min_coef: float = 1e-6,
    max_coef: float = 1e6,
) -> AdaptiveKLState:
    """PPO's rule: halve beta when KL < target/tolerance, double it when KL > target*tolerance.

    Args:
      state: the current coefficient.
      kl: scalar measured KL of the last update.
      target: the KL the controller steers towards.
      tolerance: the dead band around the target, a ratio > 1.
      factor: the multiplicative step, > 1.
      min_coef, max_coef: bounds that keep beta away from 0 and from overflow.
    """
    chex.assert_rank(kl, 0)
    coef = jnp.where(kl > target * tolerance, state.coef * factor, state.coef)
    coef = jnp.where(kl < target / tolerance, state.coef / factor, coef)
    return AdaptiveKLState(coef=jnp.clip(coef, min_coef, max_coef).astype(state.coef.dtype))
