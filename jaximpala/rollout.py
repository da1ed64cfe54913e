"""Collecting unrolls: a gymnasium VectorEnv stepped by the agent's jitted `act`.

`Collector` is the thin, impure shell around the env (numpy) and the policy (jax) shared by
the inline runtime and the actor processes. It honours gymnasium's next-step autoreset: the
step after an episode ends is the reset transition, whose action the env ignores; it is
recorded with `mask=False` and the observation it returns starts the new episode.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import time
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from jaximpala.agent import Agent
from jaximpala.trajectory import Trajectory

_RUNNING_TOTALS = ("episode_return", "episode_length")
# Info keys summed over an episode (the rest are averaged): reward terms and event counts.
SUMMED_PREFIXES = ("reward/", "sum/")


@dataclasses.dataclass
class EpisodeTracker:
    """Accumulates each env's rewards and `[N]` info entries over its current episode.

    Reported as `episode/<key>`: reward terms and counts (keys starting with `reward/` or
    `sum/`) are summed, other numbers are averaged over the episode's steps (e.g. `speed`),
    bools are or-ed (e.g. `collision`): that is how per-term rewards and outcomes reach the
    logs. The env's own running `episode_return` / `episode_length`, if any, are skipped:
    the tracker counts those itself.
    """

    num_envs: int
    returns: np.ndarray = dataclasses.field(init=False)
    lengths: np.ndarray = dataclasses.field(init=False)
    sums: dict[str, np.ndarray] = dataclasses.field(init=False, default_factory=dict)

    def __post_init__(self):
        self.returns = np.zeros(self.num_envs, np.float64)
        self.lengths = np.zeros(self.num_envs, np.int64)

    def step(self, rewards, info: dict, valid: np.ndarray, ended: np.ndarray) -> list[dict]:
        """Adds one valid transition per env; returns the stats of episodes that `ended`."""
        self.returns += np.where(valid, rewards, 0.0)
        self.lengths += valid
        for key, value in info.items():
            value = np.asarray(value)
            if key.startswith("_") or key in _RUNNING_TOTALS or value.shape != (
                    self.num_envs,):
                continue
            # One masked ufunc per entry: this runs for every info key at every env step.
            if value.dtype == bool:
                total = self.sums.setdefault(key, np.zeros(self.num_envs, bool))
                np.logical_or(total, value, out=total, where=valid)
            elif np.issubdtype(value.dtype, np.number):
                total = self.sums.setdefault(key, np.zeros(self.num_envs, np.float64))
                np.add(total, value, out=total, where=valid)
        finished = []
        for i in np.flatnonzero(ended):
            stats = {"episode_return": float(self.returns[i]),
                     "episode_length": int(self.lengths[i])}
            stats.update({f"episode/{k}": float(v[i]) if v.dtype == bool or k.startswith(
                SUMMED_PREFIXES) else float(v[i]) / max(1, self.lengths[i])
                for k, v in self.sums.items()})
            finished.append(stats)
            self.returns[i], self.lengths[i] = 0.0, 0
            for total in self.sums.values():
                total[i] = 0
        return finished


# Per-episode info sums reported as outcome rates (the driving env's flags).
OUTCOME_RATES = {"episode/is_success": "success_rate", "episode/collision": "collision_rate",
                 "episode/offroad": "offroad_rate"}


def episode_means(episodes: list[dict]) -> dict[str, float]:
    """Means over finished episodes (`EpisodeTracker` stats) of what the logs report.

    `episode_return`, `episode_length`, the outcome rates (`success_rate`, `collision_rate`,
    `offroad_rate`), each reward term `reward/<term>` and each kind of collision
    `collision_rate/<kind>` (from the driving env's `collision/<kind>` flags) where the env
    reports them; where the env counts violations and distance (the driving env's
    `sum/violation/<name>` and `sum/distance` in metres), `violations_per_km` and
    `violations_per_km/<name>`: all episodes' violations over all their kilometres, and
    `collisions_per_km` likewise (absent when none moved; a policy that barely moves has
    few collisions per episode but many per km). Other info sums (e.g. a running return
    summed over steps) mean nothing and are left out.
    """
    if not episodes:
        return {}
    names = {"episode_return": "episode_return", "episode_length": "episode_length",
             **OUTCOME_RATES}
    keys = {k for e in episodes for k in e}
    names.update({k: k.removeprefix("episode/") for k in keys
                  if k.startswith("episode/reward/")})
    names.update({k: "collision_rate/" + k.removeprefix("episode/collision/") for k in keys
                  if k.startswith("episode/collision/")})
    means = {name: float(np.mean([e.get(key, 0.0) for e in episodes]))
             for key, name in sorted(names.items()) if key in keys}
    return {**means, **_per_km(episodes, keys)}


def _per_km(episodes: list[dict], keys: set[str]) -> dict[str, float]:
    """Violations (all, and per kind) and collisions per km over all episodes."""
    counted = sorted(k for k in keys if k.startswith("episode/sum/violation/"))
    kilometres = sum(e.get("episode/sum/distance", 0.0) for e in episodes) / 1000.0
    if not counted or kilometres <= 0.0:
        return {}  # no distance driven, no rate
    totals = {k.removeprefix("episode/sum/violation/"): sum(e.get(k, 0.0) for e in episodes)
              for k in counted}
    rates = {"violations_per_km": sum(totals.values()) / kilometres,
             **{f"violations_per_km/{name}": total / kilometres
                for name, total in totals.items()}}
    if "episode/collision" in keys:
        collisions = sum(e.get("episode/collision", 0.0) for e in episodes)
        rates["collisions_per_km"] = collisions / kilometres
    return rates


@dataclasses.dataclass
class CollectStats:
    """Where a `collect` call spent its time, and the episodes it finished."""

    env_seconds: float
    inference_seconds: float
    env_steps: int
    episodes: list[dict]


def finite_rewards(reward) -> np.ndarray:
    """`[N]` rewards as float32; a non-finite one raises, naming its env index."""
    reward = np.asarray(reward, np.float32)
    if not np.isfinite(reward).all():
        bad = np.flatnonzero(~np.isfinite(reward)).tolist()
        raise ValueError(f"environment returned a non-finite reward {reward[bad]} "
                         f"at env index {bad}")
    return reward


def _split_and_act(agent: Agent):
    """`agent.act` with the key split inside: one dispatch per step instead of two (the
    split alone costs a tenth of a small network's step on a CPU actor)."""

    def split_and_act(params, obs, key, core_state, episode_start):
        key, act_key = jax.random.split(key)
        return (key, *agent.act(params, obs, act_key, core_state, episode_start))

    return split_and_act


class Collector:
    """Steps `env` with `agent.act` and returns `Trajectory` unrolls of `unroll_length` steps.

    Args:
      env: a gymnasium VectorEnv with next-step autoreset (gymnasium's default).
      agent: the functional agent.
      unroll_length: T.
      gamma: discount; stored per step as `gamma * (1 - terminated)`.
      key: this collector's PRNG key (an actor passes `fold_in(run_key, actor_id)`).
      seed: seed of the env's first reset.
    """

    def __init__(self, env: gym.vector.VectorEnv, agent: Agent, *, unroll_length: int,
                 gamma: float, key: jax.Array, seed: int):
        self.env = env
        self.agent = agent
        self.unroll_length = unroll_length
        self.gamma = gamma
        self._key = key
        self._act = jax.jit(_split_and_act(agent))
        num_envs = env.num_envs
        self._obs, _ = env.reset(seed=seed)
        self._core_state = agent.initial_state(num_envs)
        self._episode_start = np.ones(num_envs, bool)
        self._resetting = np.zeros(num_envs, bool)  # this step is an autoreset transition
        self._episodes = EpisodeTracker(num_envs)

    def get_state(self) -> bytes:
        """Everything the next `collect` depends on, as bytes (for exact resume).

        The env is pickled whole: its internal state (e.g. the simulator's arrays and the
        per-slot seed generators) is what makes a resumed run continue bit for bit, and an
        arbitrary gymnasium env has no other complete description. These bytes are written
        by this process to a local checkpoint of its own run and never cross a socket.
        """
        env = self.env
        if isinstance(env, gym.vector.SyncVectorEnv):
            # Its env factories are closures (unpicklable) and only used in `__init__`.
            env = copy.copy(env)
            env.env_fns = None
        return pickle.dumps({
            "env": env,
            "obs": self._obs,
            "core_state": jax.device_get(self._core_state),
            "key": np.asarray(jax.random.key_data(self._key)),
            "key_impl": str(jax.random.key_impl(self._key)),
            "episode_start": self._episode_start,
            "resetting": self._resetting,
            "episodes": self._episodes,
        })

    def set_state(self, state: bytes) -> None:
        """Continues from a `get_state()` snapshot; the env it was built with is closed."""
        # Only ever our own checkpoint file, written by `get_state` (see there).
        restored = pickle.loads(state)
        self.env.close()
        self.env = restored["env"]
        self._obs = restored["obs"]
        self._core_state = restored["core_state"]
        self._key = jax.random.wrap_key_data(restored["key"], impl=restored["key_impl"])
        self._episode_start = restored["episode_start"]
        self._resetting = restored["resetting"]
        self._episodes = restored["episodes"]

    def collect(self, params: Any, policy_version: int) -> tuple[Trajectory, CollectStats]:
        """One unroll of `T` steps from every env, acting with `params`."""
        steps = self.unroll_length
        observations, actions, outputs = [self._obs], [], []
        rewards, discounts, masks, starts = [], [], [], [self._episode_start]
        core_state_at_start = self._core_state
        env_seconds = inference_seconds = 0.0
        finished = []
        for _ in range(steps):
            tick = time.perf_counter()
            self._key, action, output, self._core_state = self._act(
                params, self._obs, self._key, self._core_state, self._episode_start)
            action, output = jax.device_get((action, output))
            tock = time.perf_counter()
            obs, reward, terminated, truncated, info = self.env.step(action)
            env_seconds += time.perf_counter() - tock
            inference_seconds += tock - tick
            reward = finite_rewards(reward)
            valid = ~self._resetting
            ended = (terminated | truncated) & valid
            finished += self._episodes.step(reward, info, valid, ended)
            actions.append(action)
            outputs.append(output)
            rewards.append(reward)
            discounts.append((self.gamma * (1.0 - terminated)).astype(np.float32))
            masks.append(valid)
            # The next step resets the envs that ended; the observation it returns is the
            # first of a new episode.
            self._episode_start = self._resetting.copy()
            self._resetting = ended
            starts.append(self._episode_start)
            observations.append(obs)
            self._obs = obs
        stack = lambda *xs: np.stack(xs)
        trajectory = Trajectory(
            observations=jax.tree.map(stack, *observations),
            actions=jax.tree.map(stack, *actions),
            rewards=np.stack(rewards),
            discounts=np.stack(discounts),
            mask=np.stack(masks),
            episode_starts=np.stack(starts),
            behaviour_log_probs=np.stack([o.log_prob for o in outputs]).astype(np.float32),
            behaviour_dist_params=np.stack([o.dist_params for o in outputs]).astype(np.float32),
            behaviour_values=np.stack([o.value for o in outputs]).astype(np.float32),
            core_state=jax.device_get(core_state_at_start),
            policy_versions=np.full(self.env.num_envs, policy_version, np.int32),
        )
        stats = CollectStats(env_seconds, inference_seconds, steps * self.env.num_envs, finished)
        return trajectory, stats
