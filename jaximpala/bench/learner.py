"""Learner throughput: frames consumed per second by the pmapped update, default driving net.

Times `Learner.update` on a synthetic batch shaped like the driving env's trajectories
(T=32, B=256 by default) for IMPALA and PPO, on every local device and on one, and prints
frames/s and the ratio. For 2 fake CPU devices run with
`XLA_FLAGS=--xla_force_host_platform_device_count=2`. On a GPU the same command reports the
GPU's figure.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unroll-length", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--updates", type=int, default=5, help="timed updates per setting")
    parser.add_argument("--algos", default="impala,ppo")


def _synthetic_batch(agent, unroll_length: int, batch_size: int, seed: int):
    import jax
    import numpy as np

    from jaximpala.trajectory import Trajectory

    rng = np.random.default_rng(seed)
    agent.observation_space.seed(seed)
    agent.action_space.seed(seed)

    def sample(space, leading):
        return np.stack([space.sample() for _ in range(int(np.prod(leading)))]).reshape(
            *leading, *space.shape)

    def sample_tree(space, leading):
        if hasattr(space, "spaces") and isinstance(space.spaces, dict):
            return {k: sample_tree(s, leading) for k, s in space.spaces.items()}
        return sample(space, leading)

    observations = sample_tree(agent.observation_space, (unroll_length + 1, batch_size))
    actions = sample_tree(agent.action_space, (unroll_length, batch_size))
    params = agent.init(jax.random.key(seed))
    evaluation = jax.jit(agent.evaluate)(params, observations, actions,
                                         agent.initial_state(batch_size))
    shape = (unroll_length, batch_size)
    return Trajectory(
        observations=observations, actions=actions,
        rewards=rng.normal(size=shape).astype(np.float32),
        discounts=np.full(shape, 0.99, np.float32),
        mask=rng.random(shape) > 0.02,
        episode_starts=np.zeros((unroll_length + 1, batch_size), bool),
        behaviour_log_probs=np.asarray(evaluation.log_prob),
        behaviour_dist_params=_dist_params(agent, params, observations),
        behaviour_values=np.asarray(evaluation.values[:-1]),
        core_state=jax.device_get(agent.initial_state(batch_size)),
        policy_versions=np.zeros(batch_size, np.int32),
    )


def _dist_params(agent, params, observations):
    """`[T, B, P]` distribution parameters of the policy at each of the first T steps."""
    import jax
    import numpy as np

    def one_step(obs):
        _, output, _ = agent.act(params, obs, jax.random.key(0), agent.initial_state(
            jax.tree.leaves(obs)[0].shape[0]))
        return output.dist_params

    return np.asarray(jax.jit(jax.vmap(one_step))(jax.tree.map(lambda x: x[:-1],
                                                                observations)))


def run(args: argparse.Namespace) -> int:
    import math
    import time

    import gymnasium as gym
    import jax

    import jaximpala.envs  # noqa: F401  (registers the driving env)
    from jaximpala.agent import make_agent
    from jaximpala.config import AlgoConfig
    from jaximpala.learner import Learner

    env = gym.make("jaximpala/Driving-v0")
    agent = make_agent(env.observation_space, env.action_space)
    env.close()
    batch = _synthetic_batch(agent, args.unroll_length, args.batch_size, seed=0)
    frames = args.unroll_length * args.batch_size
    print(f"backend={jax.default_backend()} devices={jax.local_device_count()} "
          f"T={args.unroll_length} B={args.batch_size} frames/update={frames}")
    device_sets = [jax.local_devices()]
    if jax.local_device_count() > 1:
        device_sets.append(jax.local_devices()[:1])
    for name in args.algos.split(","):
        algo = AlgoConfig(name=name, unroll_length=args.unroll_length,
                          batch_size=args.batch_size,
                          num_minibatches=math.gcd(4, args.batch_size))
        rates = {}
        for devices in device_sets:
            learner = Learner(agent, algo, num_updates=1000, key=jax.random.key(0),
                              devices=devices)
            learner.update(batch)  # compile
            learner.update(batch)
            tick = time.perf_counter()
            for _ in range(args.updates):
                learner.update(batch)
            seconds = (time.perf_counter() - tick) / args.updates
            rates[len(devices)] = frames / seconds
            print(f"{name:<7} devices={len(devices)} update={seconds * 1e3:9.1f} ms "
                  f"frames/s={rates[len(devices)]:12.0f}", flush=True)
        if len(rates) == 2:
            print(f"{name:<7} scaling {max(rates)}/1 devices = "
                  f"{rates[max(rates)] / rates[1]:.2f}x")
    return 0
