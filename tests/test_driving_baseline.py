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


def test_baseline_drives_with_lane_assist_and_its_lane_changes_go_through_the_signal():
    """With lane assist the driver steers nothing and changes lanes by signalling alone."""
    env = DrivingVectorEnv(num_envs=8, preset="easy", steering="lane_assist")
    driver = BaselineDriver(env.config, 8)
    obs, _ = env.reset(seed=3)
    start_lane, changed, offsets = env.sim.assist_lane.copy(), np.zeros(8, bool), []
    for _ in range(200):
        action = driver.act(obs)
        assert (action["continuous"][:, 0] == 0.0).all()
        obs, _, terminated, truncated, info = env.step(action)
        assert not (terminated | truncated).any()
        assert (info["sum/violation/unsignalled_lane_change"] == 0).all()
        changed |= env.sim.assist_lane != start_lane
        offsets.append(np.abs(obs["state"][:, 2]))  # lane widths off the lane's centre
    assert changed.sum() >= 2
    assert np.mean(offsets) < 0.05  # it holds lane centres, and changes lanes crisply


@pytest.mark.parametrize("gap_time", [0.0, 3.0])
def test_baseline_with_lane_assist_completes_most_easy_episodes(gap_time):
    result = evaluate("easy", episodes=16, seed=100, num_envs=16, steering="lane_assist",
                      lane_assist_gap_time=gap_time)
    assert result["success_rate"] >= 0.8, result


def test_baseline_drives_the_same_path_with_separate_and_combined_pedals():
    """It never presses throttle and brake together, so one pedal axis carries its commands
    exactly: the same scenarios give the same trajectories and rewards."""
    runs = {}
    for pedals in ("separate", "combined"):
        env = DrivingVectorEnv(num_envs=4, preset="easy", pedals=pedals)
        assert env.single_action_space["continuous"].shape == ((3,) if pedals == "separate"
                                                               else (2,))
        driver = BaselineDriver(env.config, 4)
        obs, _ = env.reset(seed=5)
        states, rewards, braked = [], [], False
        for _ in range(150):
            action = driver.act(obs)
            braked |= bool((action["continuous"][:, -1] < 0).any())
            obs, reward, _, _, _ = env.step(action)
            states.append(np.stack([env.sim.ego.s, env.sim.ego.speed, env.sim.ego.d]))
            rewards.append(reward)
        runs[pedals] = np.array(states), np.array(rewards), braked
    assert runs["combined"][2]  # the combined pedal was used to brake
    np.testing.assert_array_equal(runs["combined"][0], runs["separate"][0])
    np.testing.assert_array_equal(runs["combined"][1], runs["separate"][1])


def test_baseline_drives_the_same_with_a_manual_and_an_automatic_gearbox():
    """It always asks for drive, so taking the gear away changes nothing it does."""
    manual = evaluate("easy", episodes=8, seed=100, num_envs=8)
    automatic = evaluate("easy", episodes=8, seed=100, num_envs=8, gearbox="automatic")
    assert automatic == manual


def test_baseline_rejects_configs_without_its_sensors():
    with pytest.raises(ValueError, match=r"driving\.state and driving\.lidar"):
        BaselineDriver(DrivingConfig(lidar=False), 1)
