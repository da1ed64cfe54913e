"""Network construction from observation spaces, initialisation and the recurrent core."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaximpala.distributions import make_action_distribution
from jaximpala.networks import (
    SINGLE_KEY,
    ActorCritic,
    ImageEncoder,
    LSTMCore,
    NetworkConfig,
    PolicyHead,
    initial_core_state,
    observation_layout,
)

SMALL = NetworkConfig(cnn_channels=(4, 8), cnn_kernels=(8, 4), cnn_strides=(4, 2),
                      vector_mlp_sizes=(16,), torso_sizes=(32,), lstm_size=8)

CAMERA = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
LIDAR = gym.spaces.Box(0.0, 50.0, (64,), np.float32)
STATE = gym.spaces.Box(-np.inf, np.inf, (14,), np.float32)
DRIVING_OBS = gym.spaces.Dict({"camera": CAMERA, "lidar": LIDAR, "state": STATE})
DRIVING_ACTIONS = gym.spaces.Dict({
    "continuous": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
    "discrete": gym.spaces.MultiDiscrete([3, 3]),
})


def random_obs(layout, leading, seed=0):
    rng = np.random.default_rng(seed)
    obs = {}
    for key, shape in layout.images:
        obs[key] = rng.integers(0, 256, leading + shape).astype(np.uint8)
    for key, shape in layout.vectors:
        obs[key] = rng.normal(size=leading + shape).astype(np.float32)
    for key, n in layout.discretes:
        obs[key] = rng.integers(0, n, leading).astype(np.int32)
    return obs


def build(obs_space, act_space, config=SMALL, key=0):
    layout = observation_layout(obs_space)
    spec = make_action_distribution(act_space, state_dependent_std=config.state_dependent_std)
    net = ActorCritic(layout, config, spec.state_independent_mask, (0.0,) * spec.num_params)
    params = net.init(jax.random.key(key), layout.dummy((1, 1)), initial_core_state(config, 1),
                      jnp.zeros((1, 1), bool))["params"]
    return layout, spec, net, params


# --------------------------------------------------------------------------------- config


@pytest.mark.parametrize("overrides, field", [
    ({"cnn_channels": (32, 0)}, "cnn_channels"),
    ({"torso_sizes": [64]}, "torso_sizes"),
    ({"cnn_kernels": (8, 4)}, "cnn_kernels"),
    ({"activation": "swishy"}, "activation"),
    ({"lstm_size": 0}, "lstm_size"),
    ({"log_std_min": 3.0}, "log_std_min"),
    ({"obs_norm_clip": 0.0}, "obs_norm_clip"),
    ({"initial_log_std": 9.0}, "initial_log_std"),
])
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"NetworkConfig.{field}"):
        NetworkConfig(**overrides)


# ------------------------------------------------------------------------- observations


def test_layout_classifies_driving_keys():
    layout = observation_layout(DRIVING_OBS)
    assert layout.images == (("camera", (64, 64, 3)),)
    assert layout.vectors == (("lidar", (64,)), ("state", (14,)))
    assert dict(layout.image_is_uint8) == {"camera": True}
    assert layout.is_dict


def test_layout_of_a_bare_box_and_unsupported_keys():
    layout = observation_layout(gym.spaces.Box(-1.0, 1.0, (4,), np.float32))
    assert layout.vectors == ((SINGLE_KEY, (4,)),) and not layout.is_dict
    with pytest.raises(TypeError, match="'bits'"):
        observation_layout(gym.spaces.Dict({"bits": gym.spaces.MultiBinary(3)}))


@pytest.mark.parametrize("obs_space, act_space", [
    (DRIVING_OBS, DRIVING_ACTIONS),
    (gym.spaces.Dict({"lidar": LIDAR, "state": STATE}), DRIVING_ACTIONS),  # camera off
    (gym.spaces.Dict({"camera": CAMERA}), DRIVING_ACTIONS),  # only the camera
    (gym.spaces.Dict({"cell": gym.spaces.Discrete(5), "state": STATE}), gym.spaces.Discrete(4)),
    (gym.make("CartPole-v1").observation_space, gym.make("CartPole-v1").action_space),
    (gym.make("Pendulum-v1").observation_space, gym.make("Pendulum-v1").action_space),
])
def test_network_builds_from_spaces_and_outputs_time_major(obs_space, act_space):
    layout, spec, net, params = build(obs_space, act_space)
    encoders = {name for name in params if name.startswith(("image_", "vector_"))}
    assert encoders == ({f"image_{k}" for k, _ in layout.images}
                        | {f"vector_{k}" for k, _ in layout.vectors + layout.discretes})
    obs = random_obs(layout, (3, 2))
    output, state = net.apply({"params": params}, obs, (), jnp.zeros((3, 2), bool))
    assert output.dist_params.shape == (3, 2, spec.num_params)
    assert output.values.shape == (3, 2) and state == ()
    assert np.all(np.isfinite(output.dist_params)) and np.all(np.isfinite(output.values))


def test_uint8_images_are_scaled_inside_the_network():
    encoder = ImageEncoder((4,), (3,), (1,), "relu", scale_uint8=True)
    raw = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3)).astype(np.uint8)
    params = encoder.init(jax.random.key(0), raw)
    unscaled = ImageEncoder((4,), (3,), (1,), "relu", scale_uint8=False)
    np.testing.assert_allclose(encoder.apply(params, raw),
                               unscaled.apply(params, raw.astype(np.float32) / 255.0),
                               rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------- init


def assert_orthogonal(kernel, gain):
    matrix = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
    gram = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(gram.shape[0]), atol=1e-5 * max(gain, 1))


def test_orthogonal_init_with_ppo_gains_and_zero_biases():
    config = NetworkConfig(**{**SMALL.__dict__, "use_lstm": True})
    _, _, _, params = build(DRIVING_OBS, DRIVING_ACTIONS, config)
    flat = {"/".join(str(k.key) for k in path): leaf
            for path, leaf in jax.tree_util.tree_leaves_with_path(params)}
    kernels = {name: leaf for name, leaf in flat.items() if name.endswith("kernel")}
    assert len(kernels) >= 10
    for name, kernel in kernels.items():
        if name.startswith("policy"):
            assert_orthogonal(kernel, 0.01)
        elif name.startswith("value"):
            assert_orthogonal(kernel, 1.0)
        elif name.startswith("lstm"):
            assert_orthogonal(kernel, 1.0)
        else:
            assert_orthogonal(kernel, np.sqrt(2.0))
    for name, leaf in flat.items():
        if name.endswith("bias") and not name.startswith("lstm"):
            np.testing.assert_array_equal(leaf, 0.0, err_msg=name)
    np.testing.assert_array_equal(params["policy"]["log_std"], np.zeros(3))


def test_policy_head_places_state_independent_log_std():
    head = PolicyHead((False, False, True, True, False), (0.0, 0.0, 0.5, -0.5, 0.0))
    x = jnp.ones((2, 7, 5))
    params = head.init(jax.random.key(0), x)
    # The initial parameters seed the log-std and the output bias.
    np.testing.assert_array_equal(params["params"]["log_std"], [0.5, -0.5])
    np.testing.assert_array_equal(params["params"]["outputs"]["bias"], [0.0, 0.0, 0.0])
    params["params"]["log_std"] = jnp.array([0.5, -1.5])
    flat = head.apply(params, x)
    dense = x @ params["params"]["outputs"]["kernel"] + params["params"]["outputs"]["bias"]
    assert flat.shape == (2, 7, 5)
    np.testing.assert_allclose(flat[..., 2:4], np.broadcast_to([0.5, -1.5], (2, 7, 2)))
    np.testing.assert_allclose(flat[..., [0, 1, 4]], dense, rtol=1e-6)


# ------------------------------------------------------------------------------ LSTM


def lstm_setup(time=6, batch=3, features=5, size=4):
    core = LSTMCore(size)
    inputs = jnp.asarray(np.random.default_rng(2).normal(size=(time, batch, features)),
                         jnp.float32)
    zeros = jnp.zeros((batch, size))
    params = core.init(jax.random.key(0), (zeros, zeros), inputs, jnp.zeros((time, batch), bool))
    return core, params, inputs, (zeros, zeros)


def test_lstm_reset_at_episode_start_equals_a_fresh_start():
    core, params, inputs, fresh = lstm_setup()
    starts = np.zeros((6, 3), bool)
    starts[3, 1] = True  # env 1 starts a new episode at step 3
    _, outputs = core.apply(params, fresh, inputs, jnp.asarray(starts))
    _, fresh_outputs = core.apply(params, fresh, inputs[3:], jnp.zeros((3, 3), bool))
    np.testing.assert_allclose(outputs[3:, 1], fresh_outputs[:, 1], rtol=1e-5, atol=1e-6)
    # Without the reset, the state from the previous episode leaks into the new one.
    _, carried = core.apply(params, fresh, inputs, jnp.zeros((6, 3), bool))
    assert not np.allclose(carried[3:, 1], fresh_outputs[:, 1], atol=1e-4)
    # Other environments are untouched by env 1's reset.
    np.testing.assert_allclose(outputs[:, [0, 2]], carried[:, [0, 2]], rtol=1e-6)


def test_lstm_state_carries_across_unroll_boundaries():
    core, params, inputs, fresh = lstm_setup()
    starts = jnp.asarray(np.random.default_rng(3).random((6, 3)) < 0.2)
    whole_state, whole = core.apply(params, fresh, inputs, starts)
    middle_state, first = core.apply(params, fresh, inputs[:4], starts[:4])
    last_state, second = core.apply(params, middle_state, inputs[4:], starts[4:])
    np.testing.assert_allclose(jnp.concatenate([first, second]), whole, rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 last_state, whole_state)


def test_initial_core_state_is_empty_without_lstm():
    assert initial_core_state(SMALL, 4) == ()
    config = NetworkConfig(**{**SMALL.__dict__, "use_lstm": True})
    cell, hidden = initial_core_state(config, 4)
    assert cell.shape == hidden.shape == (4, 8) and not np.any(cell) and not np.any(hidden)
