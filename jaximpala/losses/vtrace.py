"""V-trace off-policy value targets and policy-gradient advantages.

Espeholt et al. 2018, "IMPALA: Scalable Distributed Deep-RL with Importance Weighted
Actor-Learner Architectures", https://arxiv.org/abs/1802.01561 (Section 4, Remark 1 for the
recursion, Section 4.2 for the policy-gradient advantage).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaximpala.losses._checks import check_time_major, clip_threshold, split_lambda
from jaximpala.losses.masking import valid_mask, where_valid
from jaximpala.losses.recurrence import Method, reverse_td_recurrence

Array = chex.Array


class VTraceReturns(NamedTuple):
    """V-trace outputs, both `[T, B, ...]` and both stop-gradient.

    vs: value targets `v_s`.
    pg_advantages: `rho_bar_s * (r_s + gamma_s * v_{s+1} - V(x_s))`.
    """

    vs: Array
    pg_advantages: Array


def vtrace(
    log_rhos: Array,
    discounts: Array,
    rewards: Array,
    values: Array,
    bootstrap_value: Array,
    *,
    mask: Array | None = None,
    clip_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
    lambda_: float | Array = 1.0,
) -> VTraceReturns:
    """V-trace(lambda) targets and advantages for a time-major unroll.

    Args:
      log_rhos: `[T, B, ...]` `log pi(a_t|x_t) - log mu(a_t|x_t)`.
      discounts: `[T, B, ...]` `gamma * (1 - terminated_t)`; 0 stops bootstrapping.
      rewards: `[T, B, ...]` `r_t`.
      values: `[T, B, ...]` `V(x_t)`.
      bootstrap_value: `[B, ...]` `V(x_T)`.
      mask: optional `[T, B, ...]`; False marks a transition with no learning signal (the
        autoreset step). It has no TD error and cuts the trace: `vs_t = V(x_t)` and its
        advantage is 0. A truncated episode therefore bootstraps from `V` of its final
        observation, which sits at the next (masked) index.
      clip_rho_threshold: `rho_bar`, clips the weights of the TD errors (None: no clip).
      clip_c_threshold: `c_bar`, clips the trace coefficients (None: no clip).
      clip_pg_rho_threshold: clips the policy-gradient weights (None: no clip).
      lambda_: scalar or `[T, B, ...]`; the traces are `c_t = lambda * min(c_bar, rho_t)`.

    Returns:
      `VTraceReturns(vs, pg_advantages)`, both `[T, B, ...]` with stopped gradients.
    """
    return _vtrace(
        log_rhos, discounts, rewards, values, bootstrap_value, mask=mask,
        clip_rho_threshold=clip_rho_threshold, clip_c_threshold=clip_c_threshold,
        clip_pg_rho_threshold=clip_pg_rho_threshold, lambda_=lambda_, method="auto",
    )


def _vtrace(
    log_rhos, discounts, rewards, values, bootstrap_value, *, mask, clip_rho_threshold,
    clip_c_threshold, clip_pg_rho_threshold, lambda_, method: Method,
) -> VTraceReturns:
    check_time_major([log_rhos, discounts, rewards, values], bootstrap_value, mask)
    rho_bar = clip_threshold(clip_rho_threshold)
    c_bar = clip_threshold(clip_c_threshold)
    pg_rho_bar = clip_threshold(clip_pg_rho_threshold)
    # Targets never carry gradient: the learner differentiates the losses built on them.
    log_rhos, discounts, rewards, values, bootstrap_value = jax.lax.stop_gradient(
        (log_rhos, discounts, rewards, values, bootstrap_value)
    )
    valid = None if mask is None else valid_mask(rewards, mask)
    lambda_, step_lambda = split_lambda(lambda_, rewards)

    def td_terms(x, v_t, v_tp1):
        log_rho_t, discount_t, reward_t, _, valid_t = x
        clipped_rho_t = jnp.minimum(rho_bar, jnp.exp(log_rho_t))
        return where_valid(valid_t, clipped_rho_t * (reward_t + discount_t * v_tp1 - v_t))

    def traces(x):
        log_rho_t, discount_t, _, lambda_t, valid_t = x
        lambda_t = lambda_ if lambda_t is None else lambda_t
        return where_valid(valid_t, discount_t * lambda_t * jnp.minimum(c_bar,
                                                                         jnp.exp(log_rho_t)))

    step_inputs = (log_rhos, discounts, rewards, step_lambda, valid)
    vs = values + reverse_td_recurrence(td_terms, traces, step_inputs, values,
                                        bootstrap_value, method=method)
    vs_tp1 = jnp.concatenate([vs[1:], bootstrap_value[None]], axis=0)
    clipped_pg_rhos = jnp.minimum(pg_rho_bar, jnp.exp(log_rhos))
    pg_advantages = clipped_pg_rhos * (rewards + discounts * vs_tp1 - values)
    return VTraceReturns(vs=vs, pg_advantages=where_valid(valid, pg_advantages))
