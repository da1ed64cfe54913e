"""The one backward recursion behind V-trace and GAE.

Both estimators solve `acc_t = a_t + b_t * acc_{t+1}` backwards from `acc_T = 0`, where the
TD term `a_t` is an elementwise function of the step's inputs, `V(x_t)` and `V(x_{t+1})`,
and the trace `b_t` of the step's inputs alone. Two formulations compute it:

* ``"scan"``: `lax.scan`, one step per time index; best on CPU, where a T-step loop is
  cheap and every extra pass over `[T, B]` memory is not. The traces are computed inside
  the loop body from the raw inputs. For wide rows (many elements per time step) the TD
  terms are too, carrying `V(x_{t+1})`, so every input is read once and no `[T, B]`
  temporary is written. For narrow rows the per-iteration cost of each loop input
  dominates instead, so the TD terms are computed for all steps in one fused pass first.
* ``"associative"``: `(a, b)` for all steps at once, then `lax.associative_scan` over the
  affine maps `x -> a_t + b_t x`, which compose associatively. O(log T) depth for ~2x the
  arithmetic: suited to accelerators, where a sequential loop leaves the device idle.

``"auto"`` chooses by the default backend at trace time (scan on CPU, associative on
GPU/TPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import chex
import jax
import jax.numpy as jnp

Array = chex.Array
Method = Literal["auto", "scan", "associative"]
# Both are elementwise, so they serve one step `[B]` inside the scan and all steps
# `[T, B]` at once: (step inputs, V(x_t), V(x_{t+1})) -> a_t, and step inputs -> b_t.
TDTerms = Callable[[Any, Array, Array], Array]
Traces = Callable[[Any], Array]
# Elements per time step from which computing the TD terms inside the loop beats one
# pass before it on CPU (measured with `jaximpala bench losses`: B=256 vs B=4096).
_FUSED_MIN_ROW = 2048


def resolve_method(method: Method) -> Literal["scan", "associative"]:
    """Maps ``"auto"`` to the formulation suited to the default JAX backend."""
    if method == "auto":
        return "scan" if jax.default_backend() == "cpu" else "associative"
    if method not in ("scan", "associative"):
        raise ValueError(f"method must be 'auto', 'scan' or 'associative', got {method!r}")
    return method


def reverse_td_recurrence(td_terms: TDTerms, traces: Traces, step_inputs: Any, values: Array,
                          bootstrap_value: Array, *, method: Method = "auto") -> Array:
    """Solves `acc_t = a_t + b_t acc_{t+1}`, `acc_T = 0`.

    Args:
      td_terms: elementwise `(step_inputs_t, v_t, v_tp1) -> a_t`.
      traces: elementwise `step_inputs_t -> b_t`.
      step_inputs: a pytree of `[T, B, ...]` arrays (the step's rewards, discounts, ...).
      values: `[T, B, ...]` `V(x_t)`.
      bootstrap_value: `[B, ...]` `V(x_T)`.
      method: ``"auto"``, ``"scan"`` or ``"associative"`` (see module docstring).

    Returns:
      `[T, B, ...]` the sequence `acc_0 .. acc_{T-1}`.
    """
    method = resolve_method(method)
    zeros = jnp.zeros_like(bootstrap_value)
    if method == "scan" and bootstrap_value.size >= _FUSED_MIN_ROW:
        def fused_step(carry, inputs_t):
            acc_tp1, v_tp1 = carry
            x_t, v_t = inputs_t
            acc_t = td_terms(x_t, v_t, v_tp1) + traces(x_t) * acc_tp1
            return (acc_t, v_t), acc_t

        return jax.lax.scan(fused_step, (zeros, bootstrap_value), (step_inputs, values),
                            reverse=True)[1]

    values_tp1 = jnp.concatenate([values[1:], bootstrap_value[None]], axis=0)
    a = td_terms(step_inputs, values, values_tp1)
    if method == "associative":
        return reverse_linear_recurrence(a, traces(step_inputs), zeros, method=method)

    def step(acc_tp1, inputs_t):
        a_t, x_t = inputs_t
        acc_t = a_t + traces(x_t) * acc_tp1
        return acc_t, acc_t

    return jax.lax.scan(step, zeros, (a, step_inputs), reverse=True)[1]


def reverse_linear_recurrence(a: Array, b: Array, init: Array, *,
                              method: Method = "auto") -> Array:
    """Solves `acc_t = a_t + b_t * acc_{t+1}` backwards with `acc_T = init`.

    Args:
      a: `[T, B, ...]` additive terms.
      b: `[T, B, ...]` multiplicative terms (same shape as `a`).
      init: `[B, ...]` the value after the last step.
      method: ``"auto"``, ``"scan"`` or ``"associative"``.

    Returns:
      `[T, B, ...]` the sequence `acc_0 .. acc_{T-1}`.
    """
    chex.assert_equal_shape([a, b])
    chex.assert_equal_shape([a[0], init])
    if resolve_method(method) == "scan":
        def step(acc_tp1, ab_t):
            acc_t = ab_t[0] + ab_t[1] * acc_tp1
            return acc_t, acc_t

        return jax.lax.scan(step, init, (a, b), reverse=True)[1]

    # Element t is the affine map f_t(x) = a_t + b_t x. Scanning in reverse time order,
    # the prefix f_t o f_{t+1} o ... o f_{T-1} applied to init is acc_t.
    def compose(later, earlier):
        b_later, a_later = later
        b_earlier, a_earlier = earlier
        return b_earlier * b_later, a_earlier + b_earlier * a_later

    b_cum, a_cum = jax.lax.associative_scan(compose, (b, a), reverse=True)
    return a_cum + b_cum * init
