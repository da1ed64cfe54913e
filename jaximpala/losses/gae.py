"""Generalized advantage estimation.

Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage
Estimation", https://arxiv.org/abs/1506.02438 (equation 16).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax

from jaximpala.losses._checks import check_time_major, split_lambda
from jaximpala.losses.masking import valid_mask, where_valid
from jaximpala.losses.recurrence import Method, reverse_td_recurrence

Array = chex.Array


class GAEReturns(NamedTuple):
    """GAE outputs, both `[T, B, ...]` and both stop-gradient.

    advantages: `A_t = sum_l (prod gamma*lambda) delta_{t+l}`.
    returns: `A_t + V(x_t)`, the lambda-return value targets.
    """

    advantages: Array
    returns: Array


def gae(
    rewards: Array,
    discounts: Array,
    values: Array,
    bootstrap_value: Array,
    *,
    lambda_: float | Array = 0.95,
    mask: Array | None = None,
) -> GAEReturns:
    """GAE(lambda) advantages and lambda-returns for a time-major unroll.

    Args:
      rewards: `[T, B, ...]` `r_t`.
      discounts: `[T, B, ...]` `gamma * (1 - terminated_t)`; 0 stops bootstrapping.
      values: `[T, B, ...]` `V(x_t)`.
      bootstrap_value: `[B, ...]` `V(x_T)`.
      lambda_: scalar or `[T, B, ...]` trace decay.
      mask: optional `[T, B, ...]`; a False step has advantage 0, return `V(x_t)`, and cuts
        the trace (so truncation bootstraps from the value of the final observation).

    Returns:
      `GAEReturns(advantages, returns)`, both `[T, B, ...]` with stopped gradients.
    """
    return _gae(rewards, discounts, values, bootstrap_value, lambda_=lambda_, mask=mask,
                method="auto")


def _gae(rewards, discounts, values, bootstrap_value, *, lambda_, mask,
         method: Method) -> GAEReturns:
    check_time_major([rewards, discounts, values], bootstrap_value, mask)
    rewards, discounts, values, bootstrap_value = jax.lax.stop_gradient(
        (rewards, discounts, values, bootstrap_value)
    )
    valid = None if mask is None else valid_mask(rewards, mask)
    lambda_, step_lambda = split_lambda(lambda_, rewards)

    def td_terms(x, v_t, v_tp1):
        reward_t, discount_t, _, valid_t = x
        return where_valid(valid_t, reward_t + discount_t * v_tp1 - v_t)

    def traces(x):
        _, discount_t, lambda_t, valid_t = x
        return where_valid(valid_t, discount_t * (lambda_ if lambda_t is None else lambda_t))

    advantages = reverse_td_recurrence(td_terms, traces, (rewards, discounts, step_lambda, valid),
                                       values, bootstrap_value, method=method)
    return GAEReturns(advantages=advantages, returns=advantages + values)
