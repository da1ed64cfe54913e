"""An imitation term in the RL loss: the demonstrations' negative log-likelihood, decaying.

A warm start alone (`jaximpala.pretrain`) hands RL a clone that RL then pulls away from
(experiments/README.md, runs 32 and 34). Here the demonstrations stay in the loss during RL,
as in DAPG (Rajeswaran et al. 2018, "Learning Complex Dexterous Manipulation with Deep
Reinforcement Learning and Demonstrations", https://arxiv.org/abs/1709.10087):

    loss = rl_loss + coef(update) * NLL(demonstrated labels | demonstrated observations)

with `coef` going linearly from `coef` to `coef_end` over the run. Every optimizer step
scores `columns` windows drawn at random from the demonstrations, cut into `[L + 1]`
windows beforehand (`demo_windows`). A window starts from a zero recurrent state, so its
first `burn_in` labels (while the state fills) are left out of the likelihood.
"""

from __future__ import annotations

import pathlib
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from jaximpala import losses
from jaximpala.agent import Agent

Array = chex.Array
# The imitation term's window draws are a stream of each update's shuffling key, so runs
# without the term keep their key sequence.
IMITATION_STREAM = 7


class DemoWindows(NamedTuple):
    """Demonstrations cut into windows, the columns of one batch.

    observations: pytree of `[L + 1, W, ...]`.
    actions: pytree of `[L, W, ...]`, the labels.
    mask: `[L, W]` bool, True where a label counts (recorded, past the burn-in).
    episode_starts: `[L + 1, W]` bool.
    """

    observations: Any
    actions: Any
    mask: Array
    episode_starts: Array


class Imitation(NamedTuple):
    """The imitation term of a run: its windows and schedule (see the module docstring)."""

    windows: DemoWindows
    coef: float
    coef_end: float
    columns: int


def demo_windows(demos, *, length: int, burn_in: int) -> DemoWindows:
    """Host `DemoWindows` of a `pretrain.Demonstrations`-like recording `[T(+1), B]`.

    Windows of `length` steps start every `length` steps (a trailing part shorter than one
    is left out) and sit side by side: `W = (T // length) * B` columns, time-major within.
    The labels are used as they are (move them inside the action space's bounds first).
    """
    steps = demos.mask.shape[0]
    if not 0 <= burn_in < length <= steps:
        raise ValueError(f"windows of {length} steps with a burn-in of {burn_in} do not fit "
                         f"a recording of {steps} steps per env")
    starts = range(0, steps - length + 1, length)

    def cut(x, extra):
        return np.concatenate([np.asarray(x[s:s + length + extra]) for s in starts], axis=1)

    mask = cut(demos.mask, 0).copy()
    mask[:burn_in] = False
    return DemoWindows(observations=jax.tree.map(lambda x: cut(x, 1), demos.observations),
                       actions=jax.tree.map(lambda x: cut(x, 0), demos.actions),
                       mask=mask, episode_starts=cut(demos.episode_starts, 1))


def shard_windows(windows: DemoWindows, num_shards: int) -> DemoWindows:
    """`[L(+1), W, ...] -> [D, L(+1), W // D, ...]`; the last `W % D` columns are dropped."""
    per_shard = windows.mask.shape[1] // num_shards
    if per_shard == 0:
        raise ValueError(f"{windows.mask.shape[1]} demonstration windows do not split over "
                         f"{num_shards} devices")

    def split(x):
        x = np.asarray(x)[:, :per_shard * num_shards]
        return np.stack(np.split(x, num_shards, axis=1))

    return jax.tree.map(split, windows)


def coef_at(imitation: Imitation, update_step: Array, num_updates: int) -> Array:
    """The term's weight at `update_step`: linear from `coef` to `coef_end` over the run."""
    schedule = optax.linear_schedule(imitation.coef, imitation.coef_end, max(1, num_updates))
    return jnp.asarray(schedule(update_step), jnp.float32)


def sample_windows(windows: DemoWindows, key: Array, columns: int) -> DemoWindows:
    """`columns` windows drawn without replacement from `[L(+1), W, ...]` windows."""
    total = windows.mask.shape[1]
    picked = jax.random.choice(key, total, (min(columns, total),), replace=False)
    return jax.tree.map(lambda x: x.take(picked, axis=1), windows)


def nll(agent: Agent, params, network, windows: DemoWindows) -> Array:
    """Mean negative log-likelihood of the labels of `[L(+1), W]` windows under the policy
    (`{**params, "network": network}`), each window from a zero recurrent state."""
    ev = agent.evaluate({**params, "network": network}, windows.observations, windows.actions,
                        agent.initial_state(windows.mask.shape[1]), windows.episode_starts)
    chex.assert_equal_shape([ev.log_prob, windows.mask])
    return -losses.masked_mean(ev.log_prob, windows.mask)


def add_to_loss(loss: Array, metrics: dict, *, agent: Agent, params, network,
                windows: DemoWindows | None, coef: Array) -> tuple[Array, dict]:
    """`loss + coef * nll` and the metrics with the term's figures (unchanged when `windows`
    is None)."""
    if windows is None:
        return loss, metrics
    demo_nll = nll(agent, params, network, windows)
    total = loss + coef * demo_nll
    return total, {**metrics, "loss": total, "imitation_nll": demo_nll,
                   "imitation_coef": coef}


def save_windows(path: str | pathlib.Path, windows: DemoWindows) -> None:
    """Writes host windows to `path` (flax msgpack), so a resumed run keeps its term."""
    state = jax.tree.map(np.asarray, windows._asdict())
    pathlib.Path(path).write_bytes(serialization.msgpack_serialize(state))


def load_windows(path: str | pathlib.Path) -> DemoWindows:
    """The windows `save_windows` wrote."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the run's imitation term "
                                "(pretrain.bc_coef) needs the demonstrations it was started with")
    return DemoWindows(**serialization.msgpack_restore(path.read_bytes()))
