import textwrap

import gymnasium as gym
import jax
import numpy as np
import pytest

from jaximpala.agent import make_agent
from jaximpala.config import AlgoConfig
from jaximpala.inline import train_inline
from jaximpala.learner import Learner, NonFiniteError
from jaximpala.networks import NetworkConfig
from jaximpala.rollout import Collector
from tests.multidevice import run_with_two_devices

SMALL_NET = NetworkConfig(vector_mlp_sizes=(16,), torso_sizes=(16,))


def _cartpole_batch(num_envs=4, unroll_length=8, seed=0):
    env = gym.make_vec("CartPole-v1", num_envs=num_envs)
    agent = make_agent(env.single_observation_space, env.single_action_space, SMALL_NET)
    collector = Collector(env, agent, unroll_length=unroll_length, gamma=0.99,
                          key=jax.random.key(seed), seed=seed)
    trajectory, _ = collector.collect(agent.init(jax.random.key(seed)), 0)
    return agent, trajectory


@pytest.mark.parametrize("name", ["impala", "ppo", "appo"])
def test_update_changes_params_and_reports_the_design_metrics(name):
    agent, batch = _cartpole_batch()
    algo = AlgoConfig(name=name, unroll_length=8, batch_size=4, num_minibatches=2,
                      ppo_epochs=2)
    learner = Learner(agent, algo, num_updates=10, key=jax.random.key(0))
    before = learner.params
    metrics = learner.update(batch)
    after = learner.params
    assert learner.version == 1
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), before["network"],
                           after["network"])
    assert all(jax.tree.leaves(changed))
    expected = {"loss", "entropy", "explained_variance", "value_loss", "grad_norm",
                "param_norm", "learning_rate", "policy_lag_mean", "nonfinite_total"}
    expected |= {"rho_mean", "rho_clipped_fraction", "kl_behaviour_target_exact"} if (
        name == "impala") else {"clip_fraction", "approx_kl", "kl"}
    assert expected <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    # Observation statistics were updated from the batch.
    assert after["obs_norm"]["obs"]["count"] > before["obs_norm"]["obs"]["count"]


def test_nonfinite_updates_are_skipped_then_stop_the_run():
    agent, batch = _cartpole_batch()
    algo = AlgoConfig(name="impala", unroll_length=8, batch_size=4, max_nonfinite_updates=3)
    learner = Learner(agent, algo, num_updates=10, key=jax.random.key(0))
    before = learner.params
    poisoned = batch._replace(rewards=batch.rewards.copy())
    poisoned.rewards[0, 0] = np.nan
    for streak in (1, 2):
        metrics = learner.update(poisoned)
        assert metrics["finite"] == 0.0 and metrics["nonfinite_streak"] == streak
    with pytest.raises(NonFiniteError, match="3 consecutive updates"):
        learner.update(poisoned)
    after = learner.params
    for a, b in zip(jax.tree.leaves(before["network"]), jax.tree.leaves(after["network"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    # A finite batch resets the streak and trains again.
    assert learner.update(batch)["nonfinite_streak"] == 0.0


def test_inline_runs_are_reproducible_from_the_seed():
    def run(seed):
        result = train_inline("CartPole-v1", algo=AlgoConfig(name="ppo", unroll_length=8,
                                                             batch_size=4, num_minibatches=2),
                              num_envs=4, total_env_steps=96, seed=seed, network=SMALL_NET)
        return [m["loss"] for m in result.updates], result.learner.params

    losses_a, params_a = run(3)
    losses_b, params_b = run(3)
    losses_c, _ = run(4)
    assert losses_a == losses_b
    assert losses_a != losses_c
    for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b), strict=True):
        np.testing.assert_array_equal(a, b)


PMAP_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    from jaximpala.config import AlgoConfig
    from jaximpala.learner import Learner
    from tests.test_learner import _cartpole_batch
    assert jax.local_device_count() == 2
    agent, batch = _cartpole_batch(num_envs=4)
    # Equal valid counts per device: per-device means then weigh equally, as in the whole.
    batch = batch._replace(mask=np.ones_like(batch.mask))
    for name, value_norm in [("impala", "none"), ("ppo", "none"), ("appo", "none"),
                             ("impala", "popart"), ("appo", "popart")]:
        algo = AlgoConfig(name=name, unroll_length=8, batch_size=4, num_minibatches=1,
                          ppo_epochs=2, value_normalization=value_norm,
                          popart_step_size=0.5)
        results = []
        for devices in (jax.local_devices()[:1], jax.local_devices()):
            learner = Learner(agent, algo, num_updates=10, key=jax.random.key(0),
                              devices=devices)
            metrics = learner.update(batch)
            results.append((learner.params, metrics))
        (p1, m1), (p2, m2) = results
        for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6, err_msg=name + value_norm)
        np.testing.assert_allclose(m1["grad_norm"], m2["grad_norm"], rtol=1e-4)
    print("ok")
""")


def test_pmap_over_two_devices_equals_one_device():
    assert run_with_two_devices(PMAP_SCRIPT).strip().endswith("ok")


def test_second_update_does_not_recompile(caplog):
    agent, batch = _cartpole_batch()
    learner = Learner(agent, AlgoConfig(name="impala", unroll_length=8, batch_size=4),
                      num_updates=10, key=jax.random.key(0))
    learner.update(batch)
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level("WARNING"):
            learner.update(batch)
    finally:
        jax.config.update("jax_log_compiles", False)
    compiled = [r.getMessage()[:200] for r in caplog.records
                if r.getMessage().startswith("Compiling")]
    assert not compiled, compiled


def test_a_learner_started_from_a_host_state_continues_it_exactly():
    agent, batch = _cartpole_batch()
    algo = AlgoConfig(name="impala", unroll_length=8, batch_size=4)
    first = Learner(agent, algo, num_updates=10, key=jax.random.key(0))
    first.update(batch)
    resumed = Learner(agent, algo, num_updates=10, key=jax.random.key(99),
                      state=first.host_state())
    assert resumed.version == 1
    first.update(batch)
    resumed.update(batch)
    for a, b in zip(jax.tree.leaves(first.host_state()), jax.tree.leaves(
            resumed.host_state()), strict=True):
        a, b = (jax.random.key_data(x) if jax.dtypes.issubdtype(
            getattr(x, "dtype", None), jax.dtypes.prng_key) else x for x in (a, b))
        np.testing.assert_array_equal(a, b)


def _head_values(agent, params, batch):
    return agent.evaluate(params, batch.observations, batch.actions, batch.core_state,
                          batch.episode_starts).values


@pytest.mark.parametrize("name", ["impala", "ppo", "appo"])
def test_popart_tracks_the_target_scale_and_preserves_the_head_outputs(name):
    from jaximpala import losses
    from jaximpala.learner import _update_value_norm, init_train_state, make_optimizer

    agent, batch = _cartpole_batch()
    batch = batch._replace(rewards=batch.rewards * 1000.0)
    algo = AlgoConfig(name=name, unroll_length=8, batch_size=4, num_minibatches=2,
                      value_normalization="popart", popart_step_size=0.5)
    # Output preservation, hand-checked on one statistics move: the unnormalised value of
    # every state is the same before and after the head is rescaled.
    state = init_train_state(agent, make_optimizer(algo, 10)[0], algo, jax.random.key(0))
    targets = np.asarray(batch.rewards, np.float32)
    moved, metrics = _update_value_norm(state, targets, batch.mask, algo, None)
    before = losses.popart_unnormalize(state.value_norm, _head_values(
        agent, state.params, batch)[..., None])
    after = losses.popart_unnormalize(moved.value_norm, _head_values(
        agent, moved.params, batch)[..., None])
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-2)
    valid = targets[batch.mask]
    np.testing.assert_allclose(metrics["value_norm_mean"], 0.5 * valid.mean(), rtol=1e-5)
    # Through the learner: the statistics follow the 1000x rewards and stay finite.
    learner = Learner(agent, algo, num_updates=10, key=jax.random.key(0))
    for _ in range(3):
        metrics = learner.update(batch)
    assert metrics["value_norm_std"] > 50.0
    assert all(np.isfinite(v) for v in metrics.values())


def test_a_nonfinite_batch_leaves_the_popart_statistics_alone():
    agent, batch = _cartpole_batch()
    algo = AlgoConfig(name="impala", unroll_length=8, batch_size=4,
                      value_normalization="popart", popart_step_size=0.5)
    learner = Learner(agent, algo, num_updates=10, key=jax.random.key(0))
    learner.update(batch)
    before = learner.host_state()
    poisoned = batch._replace(rewards=batch.rewards.copy())
    poisoned.rewards[0, 0] = np.inf
    learner.update(poisoned)
    after = learner.host_state()
    np.testing.assert_array_equal(after.value_norm.mean, before.value_norm.mean)
    np.testing.assert_array_equal(after.params["network"]["value"]["kernel"],
                                  before.params["network"]["value"]["kernel"])
