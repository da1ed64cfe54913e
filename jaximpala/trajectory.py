"""The unit of experience: one time-major unroll of `T` steps from `B` environments.

Time alignment (DESIGN.md): `observations[t]` is what the agent saw before taking
`actions[t]`; `rewards[t]`, `discounts[t]` and `mask[t]` describe that transition;
`observations[T]` is the bootstrap observation, which is also the first observation of
the next unroll.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import numpy as np

Array = chex.Array


class Trajectory(NamedTuple):
    """One unroll; every field is a `[T(+1), B, ...]` array or a pytree of them.

    observations: pytree of `[T + 1, B, ...]`.
    actions: pytree of `[T, B, ...]` in the env's native form.
    rewards: `[T, B]` float32.
    discounts: `[T, B]` float32, `gamma * (1 - terminated)`.
    mask: `[T, B]` bool, False on gymnasium's next-step autoreset transition (the env ignored
      its action; it carries no learning signal).
    episode_starts: `[T + 1, B]` bool, True where the observation begins an episode.
    behaviour_log_probs: `[T, B]` float32, `log mu(a_t | x_t)` of the acting policy.
    behaviour_dist_params: `[T, B, P]` float32, the acting policy's distribution parameters.
    behaviour_values: `[T, B]` float32, the acting policy's `V(x_t)`.
    core_state: pytree of `[B, ...]`, the recurrent state before `observations[0]` (`()`
      without a recurrent core).
    policy_versions: `[B]` int32, the params version that acted (per column).
    """

    observations: Any
    actions: Any
    rewards: Array
    discounts: Array
    mask: Array
    episode_starts: Array
    behaviour_log_probs: Array
    behaviour_dist_params: Array
    behaviour_values: Array
    core_state: Any
    policy_versions: Array


# Fields whose leading axis is the batch (every other field is time-major, batch on axis 1).
BATCH_MAJOR_FIELDS = ("core_state", "policy_versions")


def _batch_axis(field: str) -> int:
    return 0 if field in BATCH_MAJOR_FIELDS else 1


def concatenate_batch(trajectories: list[Trajectory]) -> Trajectory:
    """Joins unrolls of equal length along their batch axis."""
    fields = {}
    for field in Trajectory._fields:
        axis = _batch_axis(field)
        fields[field] = jax.tree.map(lambda *xs, axis=axis: np.concatenate(xs, axis),
                                     *[getattr(t, field) for t in trajectories])
    return Trajectory(**fields)


def shard_batch(trajectory: Trajectory, num_shards: int) -> Trajectory:
    """Splits the batch over devices: `[T, B, ...] -> [D, T, B / D, ...]`, `[B] -> [D, B / D]`."""
    batch = trajectory.rewards.shape[1]
    if batch % num_shards:
        raise ValueError(f"a batch of {batch} columns does not split over {num_shards} devices")
    fields = {}
    for field in Trajectory._fields:
        axis = _batch_axis(field)
        fields[field] = jax.tree.map(
            lambda x, axis=axis: np.stack(np.split(np.asarray(x), num_shards, axis=axis)),
            getattr(trajectory, field))
    return Trajectory(**fields)


def take_columns(trajectory: Trajectory, columns: chex.Array) -> Trajectory:
    """The sub-batch of the given batch columns (`columns`: int `[b]`); jit-friendly."""
    fields = {}
    for field in Trajectory._fields:
        axis = _batch_axis(field)
        fields[field] = jax.tree.map(lambda x, axis=axis: x.take(columns, axis=axis),
                                     getattr(trajectory, field))
    return Trajectory(**fields)
