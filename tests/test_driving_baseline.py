import numpy as np
import pytest

from jaximpala.envs.driving.baseline import BaselineDriver, evaluate
from jaximpala.envs.driving.config import DrivingConfig
from jaximpala.envs.driving.env import DrivingVectorEnv


def test_baseline_completes_most_easy_episodes():
    result = evaluate("easy", episodes=16, seed=100, num_envs=16)
    assert result["success_rate"] >= 0.8, result
    assert result["mean_return"] > 10.0, result


def test_baseline_keeps_its_lane_on_an_empty_dry_road():
    env = DrivingVectorEnv(num_envs=4, traffic_density=0.0, pedestrian_density=0.0,
                           num_lanes_min=2, condition_probs=(1.0, 0.0, 0.0))
    driver = BaselineDriver(env.config, 4)
    obs, _ = env.reset(seed=1)
    for _ in range(150):
        obs, _, terminated, truncated, _ = env.step(driver.act(obs))
        assert not (terminated | truncated).any()
    state = obs["state"]
    assert np.abs(state[:, 2]).max() < 0.25  # within a quarter lane of its lane centre
    assert (env.sim.ego.speed > 5.0).all()


def test_baseline_drives_alike_with_angle_and_rate_steering():
    """The driver turns its target angle into the rate that reaches it, so the two action
    parametrisations give the same wheel angles (up to the float32 observation)."""
    paths = {}
    for steering in ("angle", "rate"):
        env = DrivingVectorEnv(num_envs=4, preset="easy", steering=steering)
        driver = BaselineDriver(env.config, 4)
        obs, _ = env.reset(seed=3)
        steer = []
        for _ in range(120):
            obs, _, terminated, truncated, _ = env.step(driver.act(obs))
            assert not (terminated | truncated).any()
            steer.append(env.sim.ego.steer.copy())
        paths[steering] = np.array(steer)
    assert np.abs(paths["angle"]).max() > 0.01  # it did steer
    np.testing.assert_allclose(paths["rate"], paths["angle"], atol=1e-4)


def test_baseline_rejects_configs_without_its_sensors():
    with pytest.raises(ValueError, match=r"driving\.state and driving\.lidar"):
        BaselineDriver(DrivingConfig(lidar=False), 1)
