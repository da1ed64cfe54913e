"""Advantage normalisation, running mean/std statistics and PopArt value rescaling.

All state is a NamedTuple updated by pure functions, so it lives inside the learner's
`TrainState` and composes with `jit`/`pmap` (pass `axis_name` to pool statistics across
devices).

PopArt: van Hasselt et al. 2016, "Learning values across many orders of magnitude",
https://arxiv.org/abs/1602.07714 (Algorithm 1); Hessel et al. 2019, "Multi-task Deep
Reinforcement Learning with PopArt", https://arxiv.org/abs/1809.04474.
The parallel moment merge is Chan, Golub & LeVeque 1979.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaximpala.losses.masking import valid_mask

Array = chex.Array


def normalize_advantages(advantages: Array, *, mask: Array | None = None, eps: float = 1e-8,
                         axis_name: str | None = None) -> Array:
    """Standardises advantages with statistics of the valid entries only.

    Args:
      advantages: `[T, B, ...]`.
      mask: optional `[T, B, ...]` valid transitions; invalid entries come back as 0.
      eps: added to the std so a constant batch does not divide by zero.
      axis_name: pmap axis to pool the statistics over, so a sharded batch is normalised
        exactly as the whole batch would be.

    Returns:
      `[T, B, ...]` zero-mean, unit-std advantages over the valid entries.
    """
    valid = valid_mask(advantages, mask)
    count = jnp.sum(valid).astype(advantages.dtype)
    total = jnp.sum(jnp.where(valid, advantages, 0.0))
    if axis_name is not None:
        count, total = jax.lax.psum((count, total), axis_name)
    mean = total / jnp.maximum(count, 1.0)
    squares = jnp.sum(jnp.where(valid, jnp.square(advantages - mean), 0.0))
    if axis_name is not None:
        squares = jax.lax.psum(squares, axis_name)
    std = jnp.sqrt(squares / jnp.maximum(count, 1.0))
    normalized = (advantages - mean) / (std + eps)
    return jnp.where(valid, normalized, jnp.zeros_like(normalized))


class RunningMeanStdState(NamedTuple):
    """Running statistics over a stream of samples of shape `feature_shape`.

    mean, var: `feature_shape` float arrays. count: scalar float, samples seen.
    """

    mean: Array
    var: Array
    count: Array


def running_mean_std_init(feature_shape: tuple[int, ...] = (),
                          dtype=jnp.float32) -> RunningMeanStdState:
    """Zero mean, unit variance, no samples seen."""
    return RunningMeanStdState(
        mean=jnp.zeros(feature_shape, dtype),
        var=jnp.ones(feature_shape, dtype),
        count=jnp.zeros((), dtype),
    )


def _batch_moments(x: Array, mask: Array | None, feature_ndim: int,
                   axis_name: str | None):
    """Count, mean and centred sum of squares over the leading (batch) dims of `x`."""
    batch_axes = tuple(range(x.ndim - feature_ndim))
    if mask is None:
        weight = jnp.ones(x.shape[: x.ndim - feature_ndim], x.dtype)
    else:
        chex.assert_shape(mask, x.shape[: x.ndim - feature_ndim])
        weight = jnp.asarray(mask).astype(x.dtype)
    weight = weight.reshape(weight.shape + (1,) * feature_ndim)
    safe_x = jnp.where(weight > 0, x, jnp.zeros_like(x))
    count = jnp.sum(weight)
    total = jnp.sum(weight * safe_x, axis=batch_axes)
    if axis_name is not None:
        count, total = jax.lax.psum((count, total), axis_name)
    mean = total / jnp.maximum(count, 1.0)
    m2 = jnp.sum(weight * jnp.square(safe_x - mean), axis=batch_axes)
    if axis_name is not None:
        m2 = jax.lax.psum(m2, axis_name)
    return count, mean, m2


def running_mean_std_update(state: RunningMeanStdState, x: Array, *,
                            mask: Array | None = None,
                            axis_name: str | None = None) -> RunningMeanStdState:
    """Merges a batch into the running statistics (Chan et al.'s parallel update).

    Args:
      state: statistics over `feature_shape`.
      x: `[..., *feature_shape]`; every leading dim is a batch dim (e.g. `[T, B, D]`).
      mask: optional `[...]` (the leading dims of `x`) marking samples to include.
      axis_name: pmap/vmap axis to pool the batch over, so every device ends with the
        same statistics.

    Returns:
      The updated state. An all-masked batch leaves it unchanged.
    """
    feature_ndim = state.mean.ndim
    chex.assert_shape(x, (..., *state.mean.shape))
    n_b, mean_b, m2_b = _batch_moments(x.astype(state.mean.dtype), mask, feature_ndim,
                                       axis_name)
    n_a = state.count
    n = n_a + n_b
    safe_n = jnp.maximum(n, 1.0)
    delta = mean_b - state.mean
    mean = state.mean + delta * (n_b / safe_n)
    m2 = state.var * n_a + m2_b + jnp.square(delta) * (n_a * n_b / safe_n)
    var = jnp.where(n > 0, m2 / safe_n, state.var)
    return RunningMeanStdState(mean=mean, var=var, count=n)


def running_mean_std_normalize(state: RunningMeanStdState, x: Array, *,
                               clip: float | None = None, eps: float = 1e-8) -> Array:
    """`(x - mean) / sqrt(var + eps)`, optionally clipped to `[-clip, clip]`.

    `x`: `[..., *feature_shape]`.
    """
    normalized = (x - state.mean) / jnp.sqrt(state.var + eps)
    if clip is not None:
        normalized = jnp.clip(normalized, -clip, clip)
    return normalized


def running_mean_std_denormalize(state: RunningMeanStdState, x: Array, *,
                                 eps: float = 1e-8) -> Array:
    """Inverse of `running_mean_std_normalize` (without clipping). `x`: `[..., *feature_shape]`."""
    return x * jnp.sqrt(state.var + eps) + state.mean


class PopArtState(NamedTuple):
    """PopArt statistics per value output.

    mean: `[K]` first moment `mu`. second_moment: `[K]` `nu`. Both are exponential moving
    averages of the (unnormalised) targets.
    """

    mean: Array
    second_moment: Array


def popart_init(num_outputs: int = 1, dtype=jnp.float32) -> PopArtState:
    """mu = 0, nu = 1, i.e. sigma = 1: the identity normalisation."""
    return PopArtState(mean=jnp.zeros((num_outputs,), dtype),
                       second_moment=jnp.ones((num_outputs,), dtype))


def popart_std(state: PopArtState, *, min_std: float = 1e-4, max_std: float = 1e6) -> Array:
    """`[K]` sigma = sqrt(nu - mu^2), clipped to `[min_std, max_std]`."""
    variance = state.second_moment - jnp.square(state.mean)
    return jnp.clip(jnp.sqrt(jnp.maximum(variance, 0.0)), min_std, max_std)


def popart_normalize(state: PopArtState, targets: Array, **std_kwargs) -> Array:
    """Maps unnormalised targets `[..., K]` into the normalised space of the value head."""
    return (targets - state.mean) / popart_std(state, **std_kwargs)


def popart_unnormalize(state: PopArtState, normalized_values: Array, **std_kwargs) -> Array:
    """Maps the value head's normalised outputs `[..., K]` back to return scale."""
    return normalized_values * popart_std(state, **std_kwargs) + state.mean


def popart_update(
    state: PopArtState,
    kernel: Array,
    bias: Array,
    targets: Array,
    *,
    step_size: float = 3e-4,
    mask: Array | None = None,
    axis_name: str | None = None,
    min_std: float = 1e-4,
    max_std: float = 1e6,
) -> tuple[PopArtState, Array, Array]:
    """Updates the statistics and rescales the value head so its unnormalised output is kept.

    "Preserving Outputs Precisely": with `sigma, mu` before and `sigma', mu'` after,
    `W' = W sigma / sigma'` and `b' = (sigma b + mu - mu') / sigma'`.

    Args:
      state: PopArt statistics, `[K]`.
      kernel: `[D, K]` value-head weights producing normalised values.
      bias: `[K]` value-head bias.
      targets: `[..., K]` unnormalised value targets (e.g. V-trace `vs`).
      step_size: beta, the EMA step size of the moments.
      mask: optional `[...]` (the leading dims of `targets`) of valid targets.
      axis_name: pmap axis to pool the target statistics over.
      min_std, max_std: clip sigma for stability.

    Returns:
      `(new_state, new_kernel, new_bias)`.
    """
    chex.assert_rank([kernel, bias], [2, 1])
    chex.assert_shape(targets, (..., bias.shape[0]))
    targets = jax.lax.stop_gradient(targets)
    count, batch_mean, batch_m2 = _batch_moments(targets, mask, 1, axis_name)
    batch_second = batch_m2 / jnp.maximum(count, 1.0) + jnp.square(batch_mean)
    beta = jnp.where(count > 0, step_size, 0.0)
    new_state = PopArtState(
        mean=(1 - beta) * state.mean + beta * batch_mean,
        second_moment=(1 - beta) * state.second_moment + beta * batch_second,
    )
    std = popart_std(state, min_std=min_std, max_std=max_std)
    new_std = popart_std(new_state, min_std=min_std, max_std=max_std)
    new_kernel = kernel * (std / new_std)
    new_bias = (std * bias + state.mean - new_state.mean) / new_std
    return new_state, new_kernel, new_bias
