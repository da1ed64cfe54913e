"""How a trained driver and the scripted baseline use the pedals as a collision nears.

Steps a run's agent (sampled and greedy) and the baseline through the same held-out
scenarios (episode j reset with seed `seed + j`, each env slot's first episode, as
`jaximpala eval`) and bins every step on which the ego moves (> 2 m/s) by its time to
collision with the vehicles ahead (`DrivingSim._following`, before the step; inf when not
closing on any, a bin of its own). Per bin: the
share of those steps, how often the brake is pressed (> 0.1), the mean throttle and brake,
the ego's mean longitudinal acceleration and speed. Prints one JSON object
(experiments/README.md, run 45):

    python experiments/braking_probe.py --run runs/RUN --episodes 32
"""

import argparse
import itertools
import json
import sys

import jax
import numpy as np

from jaximpala import evaluation
from jaximpala.envs.driving import spaces
from jaximpala.inline import make_vector_env

TTC_BINS = (0.0, 1.5, 3.0, 6.0, np.inf)  # s; a last bin holds the steps not closing on any
MOVING = 2.0  # m/s
PRESSED = 0.1  # brake


def record(env, policy, episodes: int, seed: int) -> np.ndarray:
    """[K, 5] rows (ttc, speed, throttle, brake, accel) of every step of a moving ego in
    the first episode of each slot."""
    sim, n, rows = env.unwrapped.sim, env.num_envs, []
    for start in range(0, episodes, n):
        obs, _ = env.reset(seed=seed + start)
        alive = np.arange(n) < episodes - start
        episode_start = np.ones(n, bool)
        while alive.any():
            _, ttc = sim._following()
            speed = sim.ego.speed.copy()
            action = policy(obs, episode_start)
            _, throttle, brake, _, _ = spaces.parse_actions(action, n, sim.config.pedals,
                                                         sim.config.gearbox)
            obs, _, terminated, truncated, _ = env.step(action)
            keep = alive & (speed > MOVING)
            rows.append(np.stack([ttc, speed, throttle, brake, sim.kinematics.accel])[:, keep].T)
            alive &= ~(terminated | truncated)
            episode_start = np.zeros(n, bool)
    return np.concatenate(rows)


def summarise(rows: np.ndarray) -> list[dict]:
    """Per TTC bin of `rows` ([K, 5] from `record`): share of steps and pedal statistics."""
    ttc, speed, throttle, brake, accel = rows.T
    bins = [(f"{low:g}-{high:g} s" if np.isfinite(high) else f"over {low:g} s",
             (ttc >= low) & (ttc < high))
            for low, high in itertools.pairwise(TTC_BINS)]
    bins.append(("not closing", np.isinf(ttc)))
    out = []
    for label, m in bins:
        stats = {"ttc": label, "share": float(m.mean()), "steps": int(m.sum())}
        if m.any():
            stats.update(braking=float(np.mean(brake[m] > PRESSED)),
                         brake=float(brake[m].mean()), throttle=float(throttle[m].mean()),
                         accel=float(accel[m].mean()), speed=float(speed[m].mean()))
        out.append(stats)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a driving run directory")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--seed", type=int, default=None,
                        help="first held-out scenario seed (default: the run's eval.seed)")
    parser.add_argument("--num-envs", type=int, default=16)
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.num_envs < 1:
        parser.error("--episodes and --num-envs must be at least 1")
    config, agent, params, step = evaluation.restore_agent(args.run)
    seed = config.eval.seed if args.seed is None else args.seed
    env = make_vector_env(config.env.id, min(args.num_envs, args.episodes), config.env.kwargs)
    key = jax.random.key(seed)
    policies = {"baseline": evaluation.baseline_policy(env),
                "sampled": evaluation.agent_policy(agent, params, greedy=False, key=key),
                "greedy": evaluation.agent_policy(agent, params, greedy=True, key=key)}
    result = {"run": args.run, "step": step, "episodes": args.episodes, "seed": seed}
    for name, policy in policies.items():
        result[name] = summarise(record(env, policy, args.episodes, seed))
    env.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
