"""Evaluate a run on held-out scenario seeds: `jaximpala eval --run DIR [--episodes N]`.

A trained agent is evaluated greedily (its distribution's mode) and by sampling; `--baseline`
evaluates the driving env's scripted driver instead, for comparison.

Episode j is the first episode of an env slot reset with seed `seed + j` (envs are stepped in
chunks of `num_envs`; a chunk starting at episode j is reset with `seed + j`, and gymnasium
vector envs seed slot i with `seed + i`), so the episodes do not depend on the chunk size for
the driving env and for sync vector envs. Each slot stops counting after its first episode.

Reported (`rollout.episode_means`): mean return and length, the return's std and, for the
driving env, the success, collision and off-road rates, traffic violations per km (in all and
per kind), collisions per km and each weighted reward term.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from jaximpala.agent import Agent
from jaximpala.rollout import EpisodeTracker, episode_means

# policy(obs [N, ...], episode_start [N]) -> actions [N, ...]
Policy = Callable[[Any, np.ndarray], Any]

def run_episodes(env: gym.vector.VectorEnv, policy: Policy, episodes: int, seed: int
                 ) -> list[dict]:
    """The first episode of each slot of `env`, reset with `seed + j` for episode j.

    Returns one stats dict per episode (`episode_return`, `episode_length`, `episode/<info>`),
    in seed order.
    """
    results: list[dict] = []
    num_envs = env.num_envs
    for start in range(0, episodes, num_envs):
        obs, _ = env.reset(seed=seed + start)
        tracker = EpisodeTracker(num_envs)
        first = [None] * num_envs
        resetting = np.zeros(num_envs, bool)
        episode_start = np.ones(num_envs, bool)
        while any(f is None for f in first[:episodes - start]):
            obs, reward, terminated, truncated, info = env.step(policy(obs, episode_start))
            valid = ~resetting
            ended = (terminated | truncated) & valid
            for index, stats in zip(np.flatnonzero(ended),
                                    tracker.step(np.asarray(reward), info, valid, ended),
                                    strict=True):
                if first[index] is None:
                    first[index] = stats
            episode_start, resetting = resetting, ended
        results += first[:episodes - start]
    return results


def summarise(episodes: list[dict]) -> dict[str, float]:
    """`episode_means` plus the episode count and the return's standard deviation."""
    return {"episodes": len(episodes), **episode_means(episodes),
            "episode_return_std": float(np.std([e["episode_return"] for e in episodes]))}


def agent_policy(agent: Agent, params: Any, *, greedy: bool, key: jax.Array) -> Policy:
    """A `Policy` acting with `agent`: the distribution's mode (`greedy`) or samples."""
    state = {"core": None, "key": key}
    act = jax.jit(agent.act_greedy if greedy else agent.act)

    def policy(obs, episode_start):
        num_envs = len(episode_start)
        if state["core"] is None or (jax.tree.leaves(state["core"]) and (
                jax.tree.leaves(state["core"])[0].shape[0] != num_envs)):
            state["core"] = agent.initial_state(num_envs)
        if greedy:
            action, state["core"] = act(params, obs, state["core"], episode_start)
        else:
            state["key"], step_key = jax.random.split(state["key"])
            action, _, state["core"] = act(params, obs, step_key, state["core"], episode_start)
        return jax.device_get(action)

    return policy


def baseline_policy(env: gym.vector.VectorEnv) -> Policy:
    """The driving env's scripted `BaselineDriver` as a `Policy`."""
    from jaximpala.envs.driving.baseline import BaselineDriver

    config = getattr(env.unwrapped, "config", None)
    if config is None or not hasattr(config, "camera"):
        raise ValueError("the scripted baseline driver only drives the jaximpala driving env")
    driver = BaselineDriver(config, env.num_envs)

    def policy(obs, episode_start):
        driver.reset(np.asarray(episode_start))
        return driver.act(obs)

    return policy


def random_policy(env: gym.vector.VectorEnv, seed: int) -> Policy:
    """Uniformly random actions from `env`'s action space, seeded with `seed`."""
    env.action_space.seed(seed)
    return lambda obs, episode_start: env.action_space.sample()


def evaluate(env: gym.vector.VectorEnv, policy: Policy, episodes: int, seed: int
             ) -> dict[str, float]:
    """`summarise(run_episodes(...))`."""
    return summarise(run_episodes(env, policy, episodes, seed))


def evaluate_on(env_id: str, env_kwargs: dict, make_policy: Callable[[Any], Policy], *,
                episodes: int, seed: int, num_envs: int) -> dict[str, float]:
    """`evaluate` of `make_policy(env)` on fresh vector envs of `env_id`, closed after."""
    from jaximpala.inline import make_vector_env

    env = make_vector_env(env_id, min(num_envs, episodes), env_kwargs)
    try:
        return evaluate(env, make_policy(env), episodes, seed)
    finally:
        env.close()


def evaluate_agent(env_id: str, env_kwargs: dict, agent: Agent, params: Any, *,
                   episodes: int, seed: int, num_envs: int, greedy: bool,
                   key: jax.Array) -> dict[str, float]:
    """`evaluate` of `agent` with `params` on fresh envs of `env_id`."""
    return evaluate_on(env_id, env_kwargs,
                       lambda env: agent_policy(agent, params, greedy=greedy, key=key),
                       episodes=episodes, seed=seed, num_envs=num_envs)


def evaluate_baseline(env_id: str, env_kwargs: dict, *, episodes: int, seed: int,
                      num_envs: int) -> dict[str, float]:
    """`evaluate` of the scripted driver on fresh envs of `env_id`."""
    return evaluate_on(env_id, env_kwargs, baseline_policy, episodes=episodes, seed=seed,
                       num_envs=num_envs)


def restore_agent(run_dir: str | pathlib.Path, step: int | None = None):
    """`(config, agent, params, step)` of a run's checkpoint (default: the newest)."""
    from jaximpala.checkpoint import Checkpointer
    from jaximpala.inline import agent_for_env
    from jaximpala.runs import read_run_config
    from jaximpala.train import initial_train_state

    config = read_run_config(run_dir)
    agent = agent_for_env(config.env.id, config.env.kwargs, config.network)
    template = initial_train_state(config, agent)
    checkpointer = Checkpointer(pathlib.Path(run_dir) / "checkpoints")
    try:
        restored = checkpointer.restore(template, step)
    finally:
        checkpointer.close()
    return config, agent, restored.train_state.params, restored.step


def run_dir_of(args) -> tuple[pathlib.Path | None, int | None]:
    """The run directory and checkpoint step named by `--run DIR` or `--checkpoint DIR`."""
    if getattr(args, "checkpoint", None):
        step_dir = pathlib.Path(args.checkpoint)
        if not step_dir.name.isdigit() or step_dir.parent.name != "checkpoints":
            raise FileNotFoundError(f"--checkpoint {step_dir}: expected RUN_DIR/checkpoints/"
                                    "<update>")
        return step_dir.parent.parent, int(step_dir.name)
    return (pathlib.Path(args.run) if args.run else None), None


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="a run directory (newest checkpoint)")
    source.add_argument("--checkpoint", metavar="DIR",
                        help="one checkpoint, RUN_DIR/checkpoints/<update>")
    source.add_argument("--baseline", action="store_true",
                        help="the scripted driver (driving env only) instead of an agent")
    parser.add_argument("--env", default="jaximpala/Driving-v0",
                        help="env id for --baseline (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=None,
                        help="episodes per mode (default: the run's eval.episodes)")
    parser.add_argument("--seed", type=int, default=None,
                        help="first held-out scenario seed (default: the run's eval.seed)")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--with-baseline", action="store_true",
                        help="with --run/--checkpoint: also the scripted driver on the run's "
                             "env (its kwargs and reward weights) and the same scenarios")
    parser.add_argument("--with-random", action="store_true",
                        help="with --run/--checkpoint: also uniformly random actions (seeded "
                             "with --seed) on the run's env and the same scenarios")


def run(args) -> int:
    """Prints a JSON summary: greedy and sampling evaluation (or the baseline's), and with
    `--with-baseline` / `--with-random` the baseline's / random actions' on the run's env and
    scenarios beside them."""
    import json
    import sys

    from jaximpala.config import EvalConfig

    try:
        run_dir, step = run_dir_of(args)
        if args.baseline and (args.with_baseline or args.with_random):
            raise ValueError("--with-baseline and --with-random go with --run or --checkpoint")
        if args.baseline:
            defaults = EvalConfig()
            episodes = args.episodes or defaults.episodes
            seed = defaults.seed if args.seed is None else args.seed
            result = {"policy": "baseline", "env": args.env, "episodes": episodes,
                      "seed": seed, "baseline": evaluate_baseline(
                          args.env, {}, episodes=episodes, seed=seed,
                          num_envs=args.num_envs)}
        else:
            config, agent, params, step = restore_agent(run_dir, step)
            episodes = args.episodes or config.eval.episodes
            seed = config.eval.seed if args.seed is None else args.seed
            result = {"policy": "agent", "run_dir": str(run_dir), "step": step,
                      "env": config.env.id, "episodes": episodes, "seed": seed}
            for mode, greedy in (("deterministic", True), ("stochastic", False)):
                result[mode] = evaluate_agent(
                    config.env.id, config.env.kwargs, agent, params, episodes=episodes,
                    seed=seed, num_envs=args.num_envs, greedy=greedy,
                    key=jax.random.key(seed))
            if args.with_baseline:
                result["baseline"] = evaluate_baseline(
                    config.env.id, config.env.kwargs, episodes=episodes, seed=seed,
                    num_envs=args.num_envs)
            if args.with_random:
                result["random"] = evaluate_on(
                    config.env.id, config.env.kwargs, lambda env: random_policy(env, seed),
                    episodes=episodes, seed=seed, num_envs=args.num_envs)
    except (FileNotFoundError, ValueError) as error:
        print(f"jaximpala eval: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
