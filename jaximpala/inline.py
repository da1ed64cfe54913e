"""`runtime=inline`: one process collects with the agent and updates the learner in turn.

The same `Collector` and `Learner` as the distributed runtime, with no sockets or processes:
for debugging, tests and small runs. On CPU, with the same seed, it reproduces the same run.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import jax

from jaximpala.agent import make_agent
from jaximpala.config import AlgoConfig, frames_per_update, num_updates
from jaximpala.learner import Learner
from jaximpala.networks import NetworkConfig
from jaximpala.rollout import Collector, episode_means
from jaximpala.trajectory import concatenate_batch


def make_vector_env(env_id: str, num_envs: int, env_kwargs: dict | None = None
                    ) -> gym.vector.VectorEnv:
    """A gymnasium VectorEnv: the env's native vector version if it has one, else sync.

    Raises:
      ValueError: if the env does not use gymnasium's next-step autoreset, which the
        collector's masking relies on.
    """
    import jaximpala.envs  # noqa: F401  (registers the driving ids)

    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=None,
                       **(env_kwargs or {}))
    mode = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if mode != gym.vector.AutoresetMode.NEXT_STEP:
        env.close()
        raise ValueError(f"{env_id}: autoreset_mode {mode} is not supported; jaximpala needs "
                         "gymnasium's next-step autoreset")
    return env


def agent_for_env(env_id: str, env_kwargs: dict | None = None,
                  network: NetworkConfig | None = None):
    """The agent for `env_id`'s observation and action spaces."""
    env = make_vector_env(env_id, 1, env_kwargs)
    try:
        return make_agent(env.single_observation_space, env.single_action_space, network)
    finally:
        env.close()


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """The run's (learner key, actor key); actor i acts with `fold_in(actor_key, i)`."""
    learner_key, actor_key = jax.random.split(jax.random.key(seed))
    return learner_key, actor_key


@dataclasses.dataclass
class InlineResult:
    """What an inline run produced: its episodes, per-update metrics and the learner."""

    episodes: list[dict]
    updates: list[dict]
    env_steps: int
    learner: Learner
    stopped: bool = False  # True when `stop` ended the run before `total_env_steps`
    collector_state: bytes | None = None  # `Collector.get_state()` at the end (for resume)


def train_inline(env_id: str, *, algo: AlgoConfig, num_envs: int, total_env_steps: int,
                 seed: int, network: NetworkConfig | None = None,
                 env_kwargs: dict[str, Any] | None = None,
                 on_update: Callable[[dict], None] | None = None,
                 learner: Learner | None = None,
                 stop: threading.Event | None = None,
                 collector_state: bytes | None = None, checkpoint_every: int = 0,
                 on_checkpoint: Callable[[Learner, bytes], None] | None = None
                 ) -> InlineResult:
    """Trains on `env_id` for `total_env_steps` in this process.

    `algo.batch_size` columns per update are collected as `batch_size / num_envs` unrolls
    of `num_envs` envs with the same params. `on_update` receives each update's metrics
    merged with the collection figures (env steps, episodes finished, timings). A given
    `learner` (e.g. one restored from a checkpoint) is trained instead of a fresh one;
    setting `stop` ends the run after the update in progress.

    Exact resume: every `checkpoint_every` updates, `on_checkpoint(learner, collector_state)`
    receives the learner and the collector's `get_state()` bytes; the result carries the
    final collector state. Passing both back (`learner=` restored from that train state,
    `collector_state=`) continues the run bit for bit on CPU.
    """
    if algo.batch_size % num_envs:
        raise ValueError(f"algo.batch_size={algo.batch_size} must be a multiple of "
                         f"env.num_envs={num_envs}")
    learner_key, actor_key = run_keys(seed)
    env = make_vector_env(env_id, num_envs, env_kwargs)
    agent = make_agent(env.single_observation_space, env.single_action_space, network)
    updates = num_updates(algo, total_env_steps)
    if learner is None:
        learner = Learner(agent, algo, num_updates=updates, key=learner_key)
    collector = Collector(env, agent, unroll_length=algo.unroll_length, gamma=algo.gamma,
                          key=jax.random.fold_in(actor_key, 0), seed=seed)
    if collector_state is not None:
        collector.set_state(collector_state)
    episodes, history = [], []
    try:
        for update in range(learner.version, updates):
            if stop is not None and stop.is_set():
                break
            params, version = learner.params, learner.version
            tick = time.perf_counter()
            unrolls = [collector.collect(params, version)
                       for _ in range(algo.batch_size // num_envs)]
            collect_seconds = time.perf_counter() - tick
            batch = concatenate_batch([trajectory for trajectory, _ in unrolls])
            tick = time.perf_counter()
            metrics = learner.update(batch)
            new_episodes = [e for _, stats in unrolls for e in stats.episodes]
            episodes += new_episodes
            metrics.update({
                "update": update + 1,
                "env_steps": (update + 1) * frames_per_update(algo),
                "episodes": len(new_episodes),
                "collect_seconds": collect_seconds,
                "update_seconds": time.perf_counter() - tick,
                "env_step_seconds": sum(stats.env_seconds for _, stats in unrolls),
                "inference_seconds": sum(stats.inference_seconds for _, stats in unrolls),
            })
            metrics.update(episode_means(new_episodes))
            history.append(metrics)
            if on_update is not None:
                on_update(metrics)
            if on_checkpoint is not None and checkpoint_every and (
                    learner.version % checkpoint_every == 0):
                on_checkpoint(learner, collector.get_state())
        final_state = collector.get_state()
    finally:
        collector.env.close()
    done = learner.version
    return InlineResult(episodes, history, done * frames_per_update(algo), learner,
                        stopped=done < updates, collector_state=final_state)
