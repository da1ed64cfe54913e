"""The one backward recursion behind V-trace and GAE.

Both estimators reduce to `acc_t = a_t + b_t * acc_{t+1}` run backwards over time from
`acc_T = init`. Two formulations compute it:

* ``"scan"``: `lax.scan` with one step per time index. Least work; best on CPU, where the
  loop overhead is small and the work per step is a fused multiply-add.
* ``"associative"``: `lax.associative_scan` over the affine maps `x -> a_t + b_t x`, which
  compose associatively. O(log T) depth at the price of ~2x the arithmetic; it suits
  accelerators, where a T-step sequential loop leaves the device idle.

``"auto"`` chooses by the default backend at trace time (scan on CPU, associative on
GPU/TPU).
"""

from __future__ import annotations

from typing import Literal

import chex
import jax

Array = chex.Array
Method = Literal["auto", "scan", "associative"]

# Unrolling the CPU scan amortises the while-loop bookkeeping over several steps.
_SCAN_UNROLL = 8


def resolve_method(method: Method) -> Literal["scan", "associative"]:
    """Maps ``"auto"`` to the formulation suited to the default JAX backend."""
    if method == "auto":
        return "scan" if jax.default_backend() == "cpu" else "associative"
    if method not in ("scan", "associative"):
        raise ValueError(f"method must be 'auto', 'scan' or 'associative', got {method!r}")
    return method


def reverse_linear_recurrence(a: Array, b: Array, init: Array, *, method: Method = "auto"):
    """Solves `acc_t = a_t + b_t * acc_{t+1}` backwards with `acc_T = init`.

    Args:
      a: `[T, B, ...]` additive terms.
      b: `[T, B, ...]` multiplicative terms (same shape as `a`).
      init: `[B, ...]` the value after the last step.
      method: ``"auto"``, ``"scan"`` or ``"associative"`` (see module docstring).

    Returns:
      `[T, B, ...]` the sequence `acc_0 .. acc_{T-1}`.
    """
    chex.assert_equal_shape([a, b])
    chex.assert_equal_shape([a[0], init])
    if resolve_method(method) == "scan":
        return _scan(a, b, init)
    return _associative(a, b, init)


def _scan(a: Array, b: Array, init: Array) -> Array:
    def step(acc_tp1, ab_t):
        a_t, b_t = ab_t
        acc_t = a_t + b_t * acc_tp1
        return acc_t, acc_t

    unroll = max(1, min(_SCAN_UNROLL, a.shape[0]))
    _, acc = jax.lax.scan(step, init, (a, b), reverse=True, unroll=unroll)
    return acc


def _associative(a: Array, b: Array, init: Array) -> Array:
    # Element t is the affine map f_t(x) = a_t + b_t x. Scanning in reverse time order,
    # the prefix f_t o f_{t+1} o ... o f_{T-1} applied to init is acc_t.
    def compose(later, earlier):
        b_later, a_later = later
        b_earlier, a_earlier = earlier
        return b_earlier * b_later, a_earlier + b_earlier * a_later

    b_cum, a_cum = jax.lax.associative_scan(compose, (b, a), reverse=True)
    return a_cum + b_cum * init
