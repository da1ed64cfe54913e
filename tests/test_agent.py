"""The functional agent: act/evaluate agreement, recurrence, params on the wire, obs norm."""

import dataclasses
import functools

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from jaximpala.agent import AgentOutput, Evaluation, make_agent
from jaximpala.networks import NetworkConfig

SMALL = NetworkConfig(cnn_channels=(4, 8), cnn_kernels=(8, 4), cnn_strides=(4, 2),
                      vector_mlp_sizes=(16,), torso_sizes=(32,), lstm_size=8)
SMALL_LSTM = dataclasses.replace(SMALL, use_lstm=True)

DRIVING_OBS = gym.spaces.Dict({
    "camera": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8),
    "lidar": gym.spaces.Box(0.0, 50.0, (64,), np.float32),
    "state": gym.spaces.Box(-np.inf, np.inf, (14,), np.float32),
})
DRIVING_ACTIONS = gym.spaces.Dict({
    "continuous": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
    "discrete": gym.spaces.MultiDiscrete([3, 3]),
})


@functools.cache
def driving(config=SMALL):
    """The driving-shaped agent, its jitted act/evaluate and perturbed params (built once)."""
    agent = make_agent(DRIVING_OBS, DRIVING_ACTIONS, config)
    params = perturb(jax.jit(agent.init)(jax.random.key(0)))
    return agent, jax.jit(agent.act), jax.jit(agent.evaluate), params


def random_obs(agent, leading, seed=0, vector_scale=1.0, vector_shift=0.0):
    rng = np.random.default_rng(seed)
    obs = {}
    for key, shape in agent.layout.images:
        obs[key] = rng.integers(0, 256, leading + shape).astype(np.uint8)
    for key, shape in agent.layout.vectors:
        obs[key] = (vector_shift + vector_scale * rng.normal(size=leading + shape)).astype(
            np.float32)
    for key, n in agent.layout.discretes:
        obs[key] = rng.integers(0, n, leading).astype(np.int32)
    return obs if agent.layout.is_dict else next(iter(obs.values()))


def perturb(params, seed=1, scale=0.3):
    """Random non-zero network params so outputs depend on every input."""
    leaves, treedef = jax.tree.flatten(params["network"])
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [leaf + scale * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys,
                                                                                 strict=True)]
    return {**params, "network": jax.tree.unflatten(treedef, noisy)}


def step_by_step(act, params, obs_seq, starts, state, key):
    """Acts on each observation of `[T, B, ...]` in turn, as an actor would."""
    actions, outputs = [], []
    for t in range(starts.shape[0]):
        key, sub = jax.random.split(key)
        obs = jax.tree.map(lambda x, t=t: x[t], obs_seq)
        action, output, state = act(params, obs, sub, state, starts[t])
        actions.append(action)
        outputs.append(output)
    stack = lambda xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)
    return stack(actions), stack(outputs), state


# ------------------------------------------------------------------------------- act


def test_act_jit_compiles_and_returns_native_actions_inside_the_space():
    agent, act, _, params = driving()
    action, output, state = act(params, random_obs(agent, (5,)), jax.random.key(1),
                                agent.initial_state(5))
    assert isinstance(output, AgentOutput) and state == ()
    assert output.log_prob.shape == output.value.shape == (5,)
    assert output.dist_params.shape == (5, agent.action_distribution.num_params)
    assert action["continuous"].dtype == np.float32 and action["discrete"].dtype == np.int32
    for b in range(5):
        assert DRIVING_ACTIONS.contains(jax.tree.map(lambda a, b=b: np.asarray(a[b]), action))


def test_act_rebuilds_the_behaviour_distribution_from_dist_params():
    agent, act, _, params = driving()
    action, output, _ = act(params, random_obs(agent, (5,)), jax.random.key(2))
    np.testing.assert_allclose(agent.distribution(output.dist_params).log_prob(action),
                               output.log_prob, rtol=1e-6)


def test_act_threads_the_key_explicitly():
    agent, act, _, params = driving()
    obs = random_obs(agent, (5,))
    same_a, _, _ = act(params, obs, jax.random.key(3))
    same_b, _, _ = act(params, obs, jax.random.key(3))
    other, _, _ = act(params, obs, jax.random.key(4))
    jax.tree.map(np.testing.assert_array_equal, same_a, same_b)
    assert not np.array_equal(same_a["continuous"], other["continuous"])


# ----------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize("config", [SMALL, SMALL_LSTM], ids=["feedforward", "lstm"])
def test_evaluate_matches_act_on_the_same_observations_and_actions(config):
    agent, act, evaluate, params = driving(config)
    steps, batch = 5, 3
    obs_seq = random_obs(agent, (steps + 1, batch))
    starts = np.zeros((steps + 1, batch), bool)
    starts[2, 0] = starts[4, 2] = True
    state0 = agent.initial_state(batch)
    actions, outputs, _ = step_by_step(act, params, obs_seq, starts, state0, jax.random.key(5))
    first_t = lambda tree: jax.tree.map(lambda x: x[:steps], tree)

    evaluation = evaluate(params, obs_seq, first_t(actions), state0, starts)
    assert isinstance(evaluation, Evaluation)
    assert evaluation.log_prob.shape == evaluation.entropy.shape == (steps, batch)
    assert evaluation.values.shape == (steps + 1, batch)
    np.testing.assert_allclose(evaluation.log_prob, outputs.log_prob[:steps], rtol=1e-5,
                               atol=1e-5)
    # The bootstrap value is the value of the last observation, as the actor saw it.
    np.testing.assert_allclose(evaluation.values, outputs.value, rtol=1e-5, atol=1e-5)
    behaviour = agent.distribution(outputs.dist_params[:steps])
    np.testing.assert_allclose(behaviour.kl(evaluation.dist), 0.0, atol=1e-5)


def test_evaluate_on_a_split_unroll_equals_evaluate_on_the_whole():
    agent, _, evaluate, params = driving(SMALL_LSTM)
    steps, batch, split = 6, 3, 3
    obs_seq = random_obs(agent, (steps + 1, batch), seed=4)
    starts = np.zeros((steps + 1, batch), bool)
    starts[1, 1] = True
    actions = agent.distribution(jnp.zeros((steps, batch, agent.action_distribution.num_params))
                                 ).sample(jax.random.key(6))
    state0 = agent.initial_state(batch)
    whole = evaluate(params, obs_seq, actions, state0, starts)
    # Consecutive unrolls share an observation: the first's bootstrap is the second's first.
    head = evaluate(params, jax.tree.map(lambda x: x[:split + 1], obs_seq),
                          jax.tree.map(lambda x: x[:split], actions), state0, starts[:split + 1])
    tail = evaluate(params, jax.tree.map(lambda x: x[split:], obs_seq),
                          jax.tree.map(lambda x: x[split:], actions), head.core_state,
                          starts[split:])
    np.testing.assert_allclose(jnp.concatenate([head.log_prob, tail.log_prob]), whole.log_prob,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jnp.concatenate([head.values[:-1], tail.values]), whole.values,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head.values[-1], tail.values[0], rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 tail.core_state, whole.core_state)
    # Starting the tail from a fresh state instead would change it: the state matters.
    fresh_tail = evaluate(params, jax.tree.map(lambda x: x[split:], obs_seq),
                                jax.tree.map(lambda x: x[split:], actions), state0,
                                starts[split:])
    assert not np.allclose(fresh_tail.values, tail.values, atol=1e-4)


def test_evaluate_is_differentiable_in_the_network_and_constant_in_the_obs_statistics():
    agent, act, _, params = driving(SMALL_LSTM)
    obs_seq = random_obs(agent, (3, 2), vector_shift=2.0)
    params = agent.update_observation_stats(params, obs_seq)
    action, _, _ = act(params, jax.tree.map(lambda x: x[0], obs_seq), jax.random.key(0),
                       agent.initial_state(2))
    actions = jax.tree.map(lambda a: jnp.stack([a, a]), action)

    def objective(p):
        evaluation = agent.evaluate(p, obs_seq, actions, agent.initial_state(2))
        return jnp.mean(evaluation.log_prob + evaluation.entropy) + jnp.mean(evaluation.values)

    grads = jax.jit(jax.grad(objective))(params)
    network_grads = jax.tree.leaves(grads["network"])
    assert all(np.all(np.isfinite(g)) for g in network_grads)
    assert all(np.any(g != 0) for g in jax.tree.leaves(grads["network"]["lstm"]))
    assert np.any(grads["network"]["policy"]["log_std"] != 0)
    for g in jax.tree.leaves(grads["obs_norm"]):
        np.testing.assert_array_equal(g, 0.0)


# -------------------------------------------------------------------------- gymnasium


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_agent_drives_a_real_gymnasium_env(env_id):
    env = gym.make(env_id)
    agent = make_agent(env.observation_space, env.action_space, SMALL)
    params = agent.init(jax.random.key(0))
    act = jax.jit(agent.act)
    obs, _ = env.reset(seed=0)
    key = jax.random.key(1)
    for _ in range(5):
        key, sub = jax.random.split(key)
        action, output, _ = act(params, obs[None], sub)
        action = np.asarray(action[0])
        assert env.action_space.contains(action.item() if action.ndim == 0 else action)
        assert np.isfinite(output.log_prob[0]) and np.isfinite(output.value[0])
        obs, *_ = env.step(action.item() if action.ndim == 0 else action)


def test_unsquashed_state_dependent_gaussian_agent():
    config = dataclasses.replace(SMALL, squash_continuous=False, state_dependent_std=True)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    agent = make_agent(obs_space, gym.spaces.Box(-1.0, 1.0, (2,), np.float32), config)
    params = perturb(jax.jit(agent.init)(jax.random.key(0)))
    assert "log_std" not in params["network"]["policy"]
    obs_seq = random_obs(agent, (3, 4))
    action, output, _ = jax.jit(agent.act)(params, obs_seq[0], jax.random.key(1))
    evaluation = jax.jit(agent.evaluate)(params, obs_seq, jnp.stack([action, action]))
    np.testing.assert_allclose(evaluation.log_prob[0], output.log_prob, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ params


def test_params_round_trip_through_flax_msgpack_bit_for_bit():
    agent, act, _, params = driving(SMALL_LSTM)
    params = agent.update_observation_stats(params, random_obs(agent, (4, 2), vector_shift=3.0))
    restored = serialization.msgpack_restore(serialization.msgpack_serialize(params))
    assert jax.tree.structure(restored) == jax.tree.structure(params)
    for original, back in zip(jax.tree.leaves(params), jax.tree.leaves(restored), strict=True):
        assert np.asarray(original).dtype == back.dtype
        np.testing.assert_array_equal(np.asarray(original), back)
    obs = random_obs(agent, (3,))
    state = agent.initial_state(3)
    want = act(params, obs, jax.random.key(1), state)
    got = act(restored, obs, jax.random.key(1), state)
    jax.tree.map(np.testing.assert_array_equal, want, got)


def test_init_is_a_function_of_the_key():
    agent = make_agent(DRIVING_OBS, DRIVING_ACTIONS, SMALL)
    init = jax.jit(agent.init)
    a, b, c = (init(jax.random.key(k)) for k in (0, 0, 1))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a["network"]["torso"]["Dense_0"]["kernel"],
                              c["network"]["torso"]["Dense_0"]["kernel"])


# ------------------------------------------------------------------ obs normalisation


def test_obs_norm_tracks_vector_keys_only_and_matches_numpy():
    agent = make_agent(DRIVING_OBS, DRIVING_ACTIONS, SMALL)
    params = agent.init(jax.random.key(0))
    assert set(params["obs_norm"]) == {"lidar", "state"}  # never the uint8 camera
    first = random_obs(agent, (3, 4), seed=1, vector_scale=2.0, vector_shift=5.0)
    second = random_obs(agent, (2, 4), seed=2, vector_scale=0.5, vector_shift=-1.0)
    mask = np.ones((2, 4), bool)
    mask[1, 2:] = False
    params = agent.update_observation_stats(params, first)
    params = agent.update_observation_stats(params, second, mask=mask)
    for key in ("lidar", "state"):
        seen = np.concatenate([first[key].reshape(-1, first[key].shape[-1]),
                               second[key][mask]]).astype(np.float64)
        stats = params["obs_norm"][key]
        np.testing.assert_allclose(stats["count"], seen.shape[0])
        np.testing.assert_allclose(stats["mean"], seen.mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stats["var"], seen.var(0), rtol=1e-4)

        normalized = agent.normalize_observations(params, second)[key]
        want = np.clip((second[key] - seen.mean(0)) / np.sqrt(seen.var(0) + 1e-8), -5, 5)
        np.testing.assert_allclose(normalized, want, rtol=1e-4, atol=1e-4)
    camera = agent.normalize_observations(params, second)["camera"]
    assert camera.dtype == np.uint8
    np.testing.assert_array_equal(camera, second["camera"])


def test_obs_norm_clips_outliers():
    agent = make_agent(DRIVING_OBS, DRIVING_ACTIONS, dataclasses.replace(SMALL, obs_norm_clip=2))
    params = agent.update_observation_stats(agent.init(jax.random.key(0)),
                                            random_obs(agent, (8, 8)))
    outliers = random_obs(agent, (3,), vector_shift=1e6)
    normalized = agent.normalize_observations(params, outliers)
    np.testing.assert_allclose(normalized["lidar"], 2.0)
    np.testing.assert_allclose(normalized["state"], 2.0)


def test_obs_norm_is_applied_identically_in_act_and_evaluate():
    agent, act, evaluate, params = driving()
    obs_seq = random_obs(agent, (3, 3), vector_scale=10.0, vector_shift=20.0)
    normalized_params = agent.update_observation_stats(params, obs_seq)
    for p in (params, normalized_params):
        action, output, _ = act(p, jax.tree.map(lambda x: x[0], obs_seq), jax.random.key(1))
        evaluation = evaluate(p, obs_seq, jax.tree.map(lambda a: jnp.stack([a, a]), action))
        np.testing.assert_allclose(evaluation.values[0], output.value, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(evaluation.log_prob[0], output.log_prob, rtol=1e-5,
                                   atol=1e-5)
    # The statistics really change what the network sees.
    _, plain, _ = act(params, jax.tree.map(lambda x: x[0], obs_seq), jax.random.key(1))
    assert not np.allclose(plain.value, output.value, atol=1e-3)


def test_obs_norm_pools_statistics_across_devices_with_axis_name():
    agent = make_agent(gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
                       gym.spaces.Discrete(2), SMALL)
    params = agent.init(jax.random.key(0))
    shards = np.random.default_rng(7).normal(size=(2, 5, 3)).astype(np.float32) * [1, 2, 3]
    pooled = jax.vmap(lambda obs: agent.update_observation_stats(params, obs, axis_name="d"),
                      axis_name="d")(shards)
    stats = pooled["obs_norm"]["obs"]
    np.testing.assert_allclose(stats["mean"][0], stats["mean"][1])
    np.testing.assert_allclose(stats["mean"][0], shards.reshape(-1, 3).mean(0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(stats["var"][0], shards.reshape(-1, 3).var(0), rtol=1e-4)


def test_observation_normalisation_can_be_switched_off():
    agent = make_agent(DRIVING_OBS, DRIVING_ACTIONS,
                       dataclasses.replace(SMALL, normalize_observations=False))
    params = agent.init(jax.random.key(0))
    assert params["obs_norm"] == {}
    obs = random_obs(agent, (2,), vector_shift=100.0)
    assert agent.update_observation_stats(params, obs)["obs_norm"] == {}
    np.testing.assert_array_equal(agent.normalize_observations(params, obs)["lidar"],
                                  obs["lidar"])


@pytest.mark.parametrize("state_dependent_std", [False, True])
def test_the_untrained_policy_prefers_the_configured_initial_action(state_dependent_std):
    action_space = gym.spaces.Dict({
        "continuous": gym.spaces.Box(np.array([-1, 0, 0], np.float32), 1.0, (3,), np.float32),
        "discrete": gym.spaces.MultiDiscrete([3, 3])})
    obs_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    config = NetworkConfig(vector_mlp_sizes=(8,), torso_sizes=(8,), initial_log_std=-1.0,
                           initial_action={"continuous": [0.0, 0.7, 0.05],
                                           "discrete": [2, None]},
                           state_dependent_std=state_dependent_std)
    agent = make_agent(obs_space, action_space, config)
    params = agent.init(jax.random.key(0))
    obs = np.zeros((5, 4), np.float32)  # zero features: the head outputs its bias alone
    _, output, _ = agent.act(params, obs, jax.random.key(1))
    dist = agent.distribution(output.dist_params)
    mode = dist.mode()
    np.testing.assert_allclose(mode["continuous"][0], [0.0, 0.7, 0.05], atol=1e-5)
    np.testing.assert_array_equal(mode["discrete"][0], [2, 0])
    parts = dist.parts
    np.testing.assert_allclose(parts["continuous"].log_std, -1.0)
    # The preferred gear is 2 nats above the others; the unconstrained signal is uniform.
    probs = np.asarray(jax.nn.softmax(parts["discrete"].logits[0], axis=-1))
    np.testing.assert_allclose(probs[0], np.exp([0, 0, 2]) / np.exp([0, 0, 2]).sum(),
                               rtol=1e-5)
    np.testing.assert_allclose(probs[1], 1 / 3, rtol=1e-5)
    for bad, match in [({"continuous": [0.0, 1.0, 0.0]}, "strictly inside"),
                       ({"discrete": [3, 0]}, r"MultiDiscrete\[0\]"),
                       ({"pedals": [0.5]}, "unknown action keys"),
                       ({"discrete": [2]}, r"network\.initial_action .*needs 2 entries")]:
        with pytest.raises(ValueError, match=match):
            make_agent(obs_space, action_space, NetworkConfig(initial_action=bad))
