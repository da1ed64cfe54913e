"""Behaviour-clone the scripted driver (the warm start alone, no RL) and evaluate the clone.

Runs `jaximpala.pretrain.warm_start` with a run config (default: the default job) and
`pretrain.*` overrides, then evaluates the cloned policy, sampled and greedy, on held-out
scenarios; prints one JSON line per epoch and a final JSON summary:

    python experiments/clone_baseline.py pretrain.demo_env_steps=200000 pretrain.epochs=40
    python experiments/clone_baseline.py pretrain.demo_env_steps=200000 pretrain.epochs=15 \\
        pretrain.dagger_rounds=2
"""

import argparse
import json
import sys

import jax

from jaximpala.config import load_config
from jaximpala.evaluation import evaluate_agent
from jaximpala.inline import agent_for_env, run_keys
from jaximpala.pretrain import warm_start
from jaximpala.train import DEFAULT_CONFIG, config_path, initial_train_state

OUTCOMES = ("success_rate", "collision_rate", "offroad_rate", "episode_return",
            "episode_length")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("overrides", nargs="*", metavar="key.path=value")
    args = parser.parse_args(argv)
    config = load_config(config_path(args.config), args.overrides)
    if not config.pretrain.demo_env_steps:
        parser.error("set pretrain.demo_env_steps (e.g. pretrain.demo_env_steps=200000)")
    agent = agent_for_env(config.env.id, config.env.kwargs, config.network)
    learner_key, _ = run_keys(config.seed)
    state, stats, _ = warm_start(config, agent, initial_train_state(config, agent),
                              key=learner_key,
                              on_epoch=lambda m: print(json.dumps(m), flush=True))
    summary = {"demo_env_steps": stats.demo_env_steps, "seconds": round(stats.seconds, 1),
               "demonstrations": {k: stats.demo_episodes.get(k) for k in OUTCOMES}}
    for greedy in (False, True):
        result = evaluate_agent(config.env.id, config.env.kwargs, agent, state.params,
                                episodes=args.episodes, seed=config.eval.seed,
                                num_envs=config.eval.num_envs, greedy=greedy,
                                key=jax.random.key(config.eval.seed))
        summary["greedy" if greedy else "sampled"] = {k: result.get(k) for k in OUTCOMES}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
