import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import jaximpala.envs  # noqa: F401  (registers the ids)
from jaximpala.envs.driving.config import REWARD_TERMS, DrivingConfig
from jaximpala.envs.driving.env import DrivingEnv, DrivingVectorEnv
from jaximpala.envs.driving.registration import ENV_IDS

SHORT = dict(max_episode_steps=25, route_length=60.0)


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_registered_env_passes_check_env_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(env_id, render_mode="rgb_array")
        check_env(env.unwrapped)
        env.reset(seed=0)
        frame = env.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8


def test_an_automatic_gearbox_keeps_the_car_in_drive():
    """With the gear out of the action, the car drives off on throttle alone and its
    discrete action is the turn signal."""
    env = DrivingVectorEnv(num_envs=2, preset="easy", gearbox="automatic", **SHORT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("jaximpala/Driving-easy-v0", render_mode="rgb_array",
                           gearbox="automatic", **SHORT).unwrapped)
    assert list(env.single_action_space["discrete"].nvec) == [3]
    env.reset(seed=3)
    speed0 = env.sim.ego.speed.copy()
    action = {"continuous": np.array([[0.0, 1.0, 0.0]] * 2, np.float32),
              "discrete": np.array([[1], [0]])}
    for _ in range(10):
        env.step(action)
    assert (env.sim.ego.gear == 2).all() and (env.sim.ego.speed > speed0).all()
    np.testing.assert_array_equal(env.sim.signal, [1, 0])


def test_make_vec_gives_the_native_vector_env():
    env = gym.make_vec("jaximpala/Driving-v0", num_envs=3,
                       vectorization_mode="vector_entry_point")
    assert isinstance(env.unwrapped, DrivingVectorEnv)
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs, _ = env.reset(seed=0)
    assert obs["camera"].shape == (3, 64, 64, 5)
    assert env.single_observation_space["lidar"].shape == (64,)
    assert env.unwrapped.config == DrivingConfig()
    assert gym.make("jaximpala/Driving-easy-v0").unwrapped.config.traffic_density == 0.2


def _random_actions(space, steps, seed):
    space.seed(seed)
    return [space.sample() for _ in range(steps)]


@pytest.mark.parametrize("preset", ["easy", "default", "hard"])
def test_vector_and_single_envs_give_identical_trajectories(preset):
    n, steps, seed = 3, 70, 7
    vec = DrivingVectorEnv(num_envs=n, preset=preset, **SHORT)
    actions = _random_actions(vec.action_space, steps, 0)
    obs, _ = vec.reset(seed=seed)
    vec_log = [obs]
    vec_out = []
    for action in actions:
        obs, reward, terminated, truncated, info = vec.step(action)
        vec_log.append(obs)
        vec_out.append((reward, terminated, truncated, info["reward/progress"]))
    ends = 0
    for i in range(n):
        single = DrivingEnv(preset=preset, **SHORT)
        obs, _ = single.reset(seed=seed + i)
        done = False
        for t, action in enumerate(actions):
            for key in obs:
                np.testing.assert_array_equal(obs[key], vec_log[t][key][i], err_msg=f"{key} {t}")
            if done:  # the vector env autoresets this step and ignores the action
                obs, _ = single.reset()
                reward, terminated, truncated, progress = 0.0, False, False, 0.0
                done = False
            else:
                one = {k: v[i] for k, v in action.items()}
                obs, reward, terminated, truncated, info = single.step(one)
                progress = info["reward/progress"]
                done = terminated or truncated
                ends += done
            vec_reward, vec_term, vec_trunc, vec_progress = (x[i] for x in vec_out[t])
            assert (reward, terminated, truncated, progress) == (
                vec_reward, vec_term, vec_trunc, vec_progress), t
    assert ends >= n  # every slot went through at least one autoreset


def test_same_seed_same_episodes_bit_for_bit():
    def rollout(seed):
        env = DrivingVectorEnv(num_envs=2, **SHORT)
        obs, _ = env.reset(seed=seed)
        frames = [obs]
        for action in _random_actions(env.action_space, 40, 1):
            frames.append(env.step(action))
        return frames

    a, b, c = rollout(3), rollout(3), rollout(4)
    for x, y in zip(a[1:], b[1:], strict=True):
        for key in x[0]:
            np.testing.assert_array_equal(x[0][key], y[0][key])
        np.testing.assert_array_equal(x[1], y[1])
    assert not np.array_equal(a[5][0]["state"], c[5][0]["state"])


def test_next_step_autoreset_semantics_and_info():
    env = DrivingVectorEnv(num_envs=2, max_episode_steps=3)
    env.reset(seed=0)
    zero = {"continuous": np.zeros((2, 3), np.float32), "discrete": np.full((2, 2), [2, 0])}
    for _ in range(3):
        _, reward, terminated, truncated, info = env.step(zero)
    assert truncated.all() and not terminated.any()
    assert (info["episode_length"] == 3).all()
    assert set(f"reward/{t}" for t in REWARD_TERMS) <= set(info)
    assert all(v.shape == (2,) for v in info.values())
    # the next step starts new episodes; its (NaN) actions are ignored
    nan = {"continuous": np.full((2, 3), np.nan), "discrete": zero["discrete"]}
    _, reward, terminated, truncated, info = env.step(nan)
    assert (reward == 0).all() and not terminated.any() and not truncated.any()
    assert (info["episode_length"] == 0).all()
    with pytest.raises(ValueError, match="finite"):
        env.step(nan)


def test_nan_action_raises_in_the_single_env():
    env = DrivingEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step({"continuous": np.array([np.nan, 0, 0], np.float32),
                  "discrete": np.array([2, 0])})


def test_bad_config_through_make_names_the_field():
    with pytest.raises(ValueError, match=r"driving\.traffic_density"):
        gym.make("jaximpala/Driving-v0", traffic_density=2.0)
    with pytest.raises(ValueError, match=r"driving\.preset"):
        DrivingEnv(preset="nope")


@pytest.mark.parametrize("overrides", [
    dict(crosswalks_max=0),
    dict(max_traffic=0, max_pedestrians=0),
    dict(camera_size=16, num_lidar_rays=7),
    dict(num_lanes_min=1, num_lanes_max=1, traffic_density=1.0, pedestrian_density=1.0),
    dict(route_length=20.0, max_episode_steps=5),
    dict(radar=True, max_sensor_noise=0.2, traffic_density=1.0),
])
def test_edge_configs_step_with_finite_observations(overrides):
    env = DrivingVectorEnv(num_envs=3, **overrides)
    obs, _ = env.reset(seed=1)
    env.action_space.seed(0)
    for _ in range(40):
        obs, reward, *_ = env.step(env.action_space.sample())
        assert all(np.isfinite(v).all() for v in obs.values()) and np.isfinite(reward).all()
        for key, space in env.single_observation_space.spaces.items():
            assert obs[key].shape[1:] == space.shape


def test_radar_is_an_observation_key_only_when_asked_for():
    assert "radar" not in DrivingEnv(preset="easy").observation_space.spaces
    env = DrivingEnv(preset="hard", radar=True, traffic_density=1.0)
    assert env.observation_space["radar"].shape == (2,)
    obs, _ = env.reset(seed=3)
    seen = []
    for _ in range(200):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)  # noisy readings stay in the box
        seen.append(obs["radar"][0] < 1.0)
        if terminated or truncated:
            obs, _ = env.reset()
    assert any(seen)  # a lead vehicle was in range at some point
