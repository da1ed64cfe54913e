"""Learning smoke tests: tiny problems, fixed seeds, return thresholds (inline runtime, CPU).

Each run is deterministic from its seed on CPU; the budgets are the smallest that clear the
threshold with margin across the seeds tried (see the closing note of issue 4).
"""

import numpy as np

from jaximpala.config import AlgoConfig
from jaximpala.inline import train_inline
from jaximpala.networks import NetworkConfig
from tests import toy_envs

NET = NetworkConfig(vector_mlp_sizes=(64,), torso_sizes=(64,))


def _returns(result):
    return np.array([e["episode_return"] for e in result.episodes])


def test_inline_impala_solves_cartpole():
    algo = AlgoConfig(name="impala", unroll_length=32, batch_size=16, learning_rate=3e-3,
                      max_grad_norm=40.0, vtrace_lambda=0.95, lr_schedule="linear",
                      entropy_coef=0.001)
    result = train_inline("CartPole-v1", algo=algo, num_envs=8, total_env_steps=600_000,
                          seed=2, network=NET)
    assert _returns(result)[-20:].mean() >= 400


def test_inline_ppo_solves_cartpole():
    algo = AlgoConfig(name="ppo", unroll_length=128, batch_size=8, learning_rate=2.5e-3,
                      ppo_epochs=4, num_minibatches=2, entropy_coef=0.0, lr_schedule="linear")
    result = train_inline("CartPole-v1", algo=algo, num_envs=8, total_env_steps=300_000,
                          seed=1, network=NET)
    assert _returns(result)[-20:].mean() >= 400


def test_inline_ppo_improves_on_pendulum():
    algo = AlgoConfig(name="ppo", unroll_length=256, batch_size=8, learning_rate=1e-3,
                      ppo_epochs=10, num_minibatches=4, entropy_coef=0.0, gamma=0.9)
    result = train_inline("Pendulum-v1", algo=algo, num_envs=8, total_env_steps=150_000,
                          seed=0, network=NET)
    returns = _returns(result)
    # A random policy scores about -1200; swinging up and balancing approaches 0.
    assert returns[:50].mean() < -1000
    assert returns[-50:].mean() > -800


def test_inline_impala_learns_a_hybrid_dict_action_task():
    toy_envs.register()
    algo = AlgoConfig(name="impala", unroll_length=8, batch_size=16, learning_rate=3e-3,
                      entropy_coef=0.001)
    result = train_inline("jaximpala-test/HybridToy-v0", algo=algo, num_envs=16,
                          total_env_steps=40_000, seed=0, network=NET)
    returns = _returns(result)
    # Uniformly random actions score about -0.33; the optimum is 1.
    assert returns[:200].mean() < 0.0
    assert returns[-200:].mean() > 0.7
