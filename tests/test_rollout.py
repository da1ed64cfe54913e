import gymnasium as gym
import jax
import numpy as np
import pytest

from jaximpala.agent import make_agent
from jaximpala.networks import NetworkConfig
from jaximpala.rollout import Collector, EpisodeTracker, episode_means


class CountEnv(gym.Env):
    """Observation = steps taken in the episode; reward 1 per step; terminates at `length`."""

    observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length=3, reward=1.0):
        self.length, self.reward, self.t = length, reward, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        return (np.array([self.t], np.float32), self.reward, done, False,
                {"hit": done, "reward/term": float(self.t), "level": float(self.t),
                 "episode_return": 1e9})


def _collector(envs, unroll_length=6):
    env = gym.vector.SyncVectorEnv(envs)
    agent = make_agent(env.single_observation_space, env.single_action_space,
                       NetworkConfig(vector_mlp_sizes=(8,), torso_sizes=(8,)))
    params = agent.init(jax.random.key(0))
    collector = Collector(env, agent, unroll_length=unroll_length, gamma=0.9,
                          key=jax.random.key(1), seed=0)
    return collector, params


def test_termination_truncation_and_autoreset_are_recorded_exactly():
    # env 0 terminates every 3 steps; env 1 is truncated by a time limit after 2 steps.
    collector, params = _collector([
        lambda: CountEnv(length=3),
        lambda: gym.wrappers.TimeLimit(CountEnv(length=100), max_episode_steps=2),
    ])
    trajectory, stats = collector.collect(params, policy_version=5)
    obs = trajectory.observations[..., 0]
    # env 0: steps 1,2,3(terminal) then the autoreset step returns 0, and so on.
    np.testing.assert_array_equal(obs[:, 0], [0, 1, 2, 3, 0, 1, 2])
    np.testing.assert_array_equal(trajectory.mask[:, 0], [1, 1, 1, 0, 1, 1])
    np.testing.assert_allclose(trajectory.discounts[:, 0], [0.9, 0.9, 0, 0.9, 0.9, 0.9])
    np.testing.assert_array_equal(trajectory.episode_starts[:, 0], [1, 0, 0, 0, 1, 0, 0])
    # env 1: truncated after 2 steps; the final observation (2) is kept for bootstrapping
    # and the truncated step keeps its discount.
    np.testing.assert_array_equal(obs[:, 1], [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(trajectory.mask[:, 1], [1, 1, 0, 1, 1, 0])
    np.testing.assert_allclose(trajectory.discounts[:, 1], 0.9)
    np.testing.assert_array_equal(trajectory.episode_starts[:, 1], [1, 0, 0, 1, 0, 0, 1])
    # Autoreset transitions carry reward 0 from gymnasium; valid ones carry 1.
    np.testing.assert_array_equal(trajectory.rewards, trajectory.mask.astype(np.float32))
    np.testing.assert_array_equal(trajectory.policy_versions, [5, 5])
    assert stats.env_steps == 12
    returns = sorted(e["episode_return"] for e in stats.episodes)
    assert returns == [2.0, 2.0, 3.0]
    # `hit` (bool) is or-ed over the episode: only env 0's episode ends by termination.
    assert {(e["episode_return"], e["episode/hit"]) for e in stats.episodes} == {
        (3.0, 1.0), (2.0, 0.0)}
    # Reward terms are summed, other numbers averaged over the episode (t = 1, 2[, 3]), and
    # an env's own running totals are left to the tracker.
    assert {e["episode/reward/term"] for e in stats.episodes} == {3.0, 6.0}
    assert {e["episode/level"] for e in stats.episodes} == {1.5, 2.0}
    assert not any("episode/episode_return" in e for e in stats.episodes)


def test_unrolls_chain_the_bootstrap_observation():
    collector, params = _collector([lambda: CountEnv(length=4)] * 2, unroll_length=3)
    first, _ = collector.collect(params, 0)
    second, _ = collector.collect(params, 1)
    np.testing.assert_array_equal(first.observations[-1], second.observations[0])
    np.testing.assert_array_equal(first.episode_starts[-1], second.episode_starts[0])


def test_log_probs_match_the_agent_and_nan_rewards_are_refused():
    collector, params = _collector([lambda: CountEnv()] * 2)
    trajectory, _ = collector.collect(params, 0)
    evaluation = collector.agent.evaluate(params, trajectory.observations, trajectory.actions,
                                          trajectory.core_state, trajectory.episode_starts)
    np.testing.assert_allclose(evaluation.log_prob, trajectory.behaviour_log_probs, atol=1e-5)
    np.testing.assert_allclose(evaluation.values[:-1], trajectory.behaviour_values, atol=1e-5)
    nan_collector, params = _collector([lambda: CountEnv(reward=float("nan"))] * 2)
    with pytest.raises(ValueError, match="non-finite reward"):
        nan_collector.collect(params, 0)


def test_episode_tracker_skips_invalid_steps_and_non_per_env_info():
    tracker = EpisodeTracker(2)
    tracker.step(np.array([1.0, 5.0]), {"_x": np.ones(2), "scalar": 3.0},
                 valid=np.array([True, False]), ended=np.array([False, False]))
    done = tracker.step(np.array([2.0, 1.0]), {}, valid=np.array([True, True]),
                        ended=np.array([True, True]))
    assert [d["episode_return"] for d in done] == [3.0, 1.0]
    assert [d["episode_length"] for d in done] == [2, 1]


def test_violations_per_km_pool_every_episode_and_sum_counts():
    tracker = EpisodeTracker(2)
    info = {"sum/distance": np.array([10.0, 0.0]), "sum/violation/speeding": np.array([1.0, 0.0]),
            "speed": np.array([4.0, 0.0])}
    for _ in range(49):
        tracker.step(np.zeros(2), info, valid=np.ones(2, bool), ended=np.zeros(2, bool))
    episodes = tracker.step(np.zeros(2), info, valid=np.ones(2, bool), ended=np.ones(2, bool))
    # counts and distance are summed over the episode, other numbers averaged
    assert episodes[0]["episode/sum/distance"] == 500.0
    assert episodes[0]["episode/sum/violation/speeding"] == 50.0
    assert episodes[0]["episode/speed"] == 4.0
    # 50 violations over 0.5 km of both episodes together (the second stood still)
    means = episode_means(episodes)
    assert means["violations_per_km"] == pytest.approx(100.0)
    assert means["violations_per_km/speeding"] == pytest.approx(100.0)
    assert "violations_per_km" not in episode_means([episodes[1]])  # no distance, no rate


def test_collisions_per_km_weigh_a_crash_by_the_distance_driven():
    tracker = EpisodeTracker(3)
    info = {"sum/distance": np.array([1.0, 0.01, 1.0]),
            "sum/violation/speeding": np.zeros(3),
            "collision": np.zeros(3, bool)}
    for _ in range(99):
        tracker.step(np.zeros(3), info, valid=np.ones(3, bool), ended=np.zeros(3, bool))
    # the slow slot (1 m in 100 steps) crashes on its last step; the others drive 100 m
    last = {**info, "collision": np.array([False, True, False])}
    episodes = tracker.step(np.zeros(3), last, valid=np.ones(3, bool), ended=np.ones(3, bool))
    means = episode_means(episodes)
    assert means["collision_rate"] == pytest.approx(1 / 3)
    assert means["collisions_per_km"] == pytest.approx(1 / 0.201)


def test_collision_kinds_are_reported_as_rates_over_episodes():
    tracker = EpisodeTracker(4)
    quiet = {"collision": np.zeros(4, bool), "collision/front": np.zeros(4, bool)}
    tracker.step(np.zeros(4), quiet, valid=np.ones(4, bool), ended=np.zeros(4, bool))
    last = {"collision": np.array([True, True, False, False]),
            "collision/front": np.array([True, False, False, False])}
    means = episode_means(tracker.step(np.zeros(4), last, valid=np.ones(4, bool),
                                       ended=np.ones(4, bool)))
    assert means["collision_rate"] == 0.5
    assert means["collision_rate/front"] == 0.25
