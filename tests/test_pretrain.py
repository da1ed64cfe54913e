"""Behaviour-cloning warm start: returns, noise, recording, the fit, and `jaximpala train`."""

import json
import os
import pathlib
import subprocess
import sys

import gymnasium as gym
import jax
import numpy as np
import pytest

from jaximpala.agent import make_agent
from jaximpala.cli import main
from jaximpala.config import ConfigError, load_config
from jaximpala.inline import make_vector_env
from jaximpala.logger import read_metrics
from jaximpala.networks import NetworkConfig
from jaximpala.pretrain import (
    collect_demonstrations,
    discounted_returns,
    fit,
    inside_box,
    join_demonstrations,
    perturb_action,
    warm_start,
)
from jaximpala.train import initial_train_state
from tests import toy_envs

HYBRID = gym.spaces.Dict({"continuous": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
                          "discrete": gym.spaces.MultiDiscrete([3, 2])})


def test_discounted_returns_hand_worked():
    # Column 0 terminates at t=2 (t=3 is the autoreset step); its next episode is cut by
    # the recording's end. Column 1 times out at t=1; its next episode is cut too.
    rewards = np.array([[1, 1], [1, 2], [1, 9], [9, 1], [2, 1]], np.float32)
    terminated = np.zeros((5, 2), bool)
    terminated[2, 0] = True
    truncated = np.zeros((5, 2), bool)
    truncated[1, 1] = True
    mask = np.ones((5, 2), bool)
    mask[3, 0] = mask[2, 1] = False
    returns, complete = discounted_returns(rewards, terminated, truncated, mask, gamma=0.5)
    np.testing.assert_allclose(returns, [[1.75, 2.0], [1.5, 2.0], [1.0, 0.0], [0.0, 1.5],
                                         [2.0, 1.0]])
    np.testing.assert_array_equal(complete, [[1, 0], [1, 0], [1, 0], [0, 0], [0, 0]])


def test_perturb_action_noises_float_boxes_only_and_stays_inside():
    rng = np.random.default_rng(0)
    action = {"continuous": np.zeros((20_000, 3), np.float32),
              "discrete": np.ones((20_000, 2), np.int64)}
    same = perturb_action(action, HYBRID, rng, 0.0)
    np.testing.assert_array_equal(same["continuous"], action["continuous"])
    noisy = perturb_action(action, HYBRID, rng, 0.2)
    assert noisy["continuous"].dtype == np.float32
    assert np.abs(noisy["continuous"]).max() <= 1.0
    # std = 0.2 x half of the range (1); clipping at +-1 is 5 sigma away.
    np.testing.assert_allclose(noisy["continuous"].std(axis=0), 0.2, rtol=0.03)
    np.testing.assert_array_equal(noisy["discrete"], action["discrete"])
    # Clipped at the bounds, not pushed past them.
    edge = perturb_action({**action, "continuous": np.ones((20_000, 3), np.float32)}, HYBRID,
                          rng, 0.2)
    assert edge["continuous"].max() == 1.0 and (edge["continuous"] == 1.0).mean() > 0.45


def test_inside_box_moves_only_labels_at_the_bounds():
    action = {"continuous": np.array([[1.0, -1.0, 0.3]], np.float32),
              "discrete": np.array([[2, 1]])}
    moved = inside_box(action, HYBRID, 1e-3)
    np.testing.assert_allclose(moved["continuous"], [[0.998, -0.998, 0.3]], rtol=1e-6)
    np.testing.assert_array_equal(moved["discrete"], action["discrete"])


def _hybrid_toy_env(num_envs):
    toy_envs.register()
    return make_vector_env("jaximpala-test/HybridToy-v0", num_envs)


def _toy_demonstrator(obs, episode_start):
    """The toy's optimal policy: continuous = x, discrete = the one-hot's class."""
    obs = np.asarray(obs)
    return {"continuous": obs[:, :1].copy(), "discrete": obs[:, 1:].argmax(-1)[:, None]}


def test_collect_demonstrations_labels_clean_actions_and_masks_resets():
    env = _hybrid_toy_env(3)
    executed = []

    def executor(obs, episode_start):
        action = {"continuous": np.full((3, 1), 0.5, np.float32),
                  "discrete": np.zeros((3, 1), np.int64)}
        executed.append(action)
        return action

    try:
        demos = collect_demonstrations(env, _toy_demonstrator, steps_per_env=6, gamma=0.9,
                                       action_noise=0.5, seed=4,
                                       rng=np.random.default_rng(1), executor=executor)
    finally:
        env.close()
    assert demos.observations.shape == (7, 3, 4) and demos.mask.shape == (6, 3)
    # One-step episodes: every other step is gymnasium's autoreset transition.
    np.testing.assert_array_equal(demos.mask, np.tile([[1], [0]], (3, 3)).astype(bool))
    np.testing.assert_array_equal(demos.episode_starts[:, 0], [1, 0, 1, 0, 1, 0, 1])
    # Labels are the demonstrator's clean commands for the observation they answer.
    np.testing.assert_array_equal(demos.actions["continuous"][..., 0],
                                  demos.observations[:-1, :, 0])
    assert len(executed) == 6
    # The executor drove: reward = 1[0 == c] - (0.5 - x)^2, a complete one-step return.
    x, c = demos.observations[0, :, 0], demos.observations[0, :, 1:].argmax(-1)
    np.testing.assert_allclose(demos.returns[0], (c == 0) - (0.5 - x) ** 2, rtol=1e-5)
    assert demos.returns_mask[0].all() and not demos.returns_mask[1].any()
    assert len(demos.episodes) == 9
    both = join_demonstrations(demos, demos)
    assert both.mask.shape == (6, 6) and both.actions["discrete"].shape == (6, 6, 1)
    assert len(both.episodes) == 18


@pytest.mark.parametrize("use_lstm", [False, True])
def test_fit_clones_the_toy_demonstrator(use_lstm):
    env = _hybrid_toy_env(16)
    try:
        demos = collect_demonstrations(env, _toy_demonstrator, steps_per_env=256, gamma=0.9,
                                       action_noise=0.1, seed=0,
                                       rng=np.random.default_rng(0))
        held_out = collect_demonstrations(env, _toy_demonstrator, steps_per_env=16,
                                          gamma=0.9, action_noise=0.0, seed=99,
                                          rng=np.random.default_rng(1))
        agent = make_agent(env.single_observation_space, env.single_action_space,
                           NetworkConfig(vector_mlp_sizes=(64,), torso_sizes=(64,),
                                         use_lstm=use_lstm, lstm_size=16))
    finally:
        env.close()
    params = agent.update_observation_stats(agent.init(jax.random.key(0)), demos.observations)
    log_std_before = params["network"]["policy"]["log_std"]
    params, value_norm, history = fit(
        agent, demos, params=params, popart=True, unroll_length=16, epochs=15,
        learning_rate=3e-3, max_grad_norm=1.0, value_coef=0.5)
    assert len(history) == 15 and history[-1]["nll"] < history[0]["nll"] - 1.0
    assert history[-1]["value_loss"] < history[0]["value_loss"]
    # PopArt statistics are the demonstrations' returns (mean about 1: perfect play, noise).
    assert 0.8 < float(value_norm.mean[0]) <= 1.0
    # The log-std is fitted: a deterministic demonstrator is matched with less noise.
    assert (params["network"]["policy"]["log_std"] < log_std_before).all()
    first = jax.tree.map(lambda x: x[0], held_out.observations)
    mode, _ = agent.act_greedy(params, first, agent.initial_state(16),
                               np.ones(16, bool))
    label = _toy_demonstrator(first, None)
    assert np.abs(np.asarray(mode["continuous"]) - label["continuous"]).max() < 0.15
    assert (np.asarray(mode["discrete"]) == label["discrete"]).mean() == 1.0


def _driving_args(tmp_path, *extra):
    return ["train", "--config", "driving_appo", f"run_dir={tmp_path / 'run'}",
            "total_env_steps=2048", "env.num_envs=4", "algo.batch_size=4",
            "algo.unroll_length=32", "network.lstm_size=16", "network.torso_sizes=[32]",
            "network.vector_mlp_sizes=[32]", "eval.episodes=0", "eval.video_steps=0",
            "logging.wandb_mode=disabled", "logging.progress=false", *extra]


def test_train_warm_starts_from_the_driving_baseline(tmp_path, capsys):
    # 128 steps per env end no episode: the value head is left alone, and says so.
    with pytest.warns(UserWarning, match="value head is not fitted"):
        code = main(_driving_args(tmp_path, "pretrain.demo_env_steps=512",
                                  "pretrain.num_envs=4", "pretrain.epochs=2",
                                  "pretrain.dagger_rounds=1"))
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out.strip().splitlines()[-2])
    pretrain = summary["pretrain"]
    assert pretrain["demo_env_steps"] == 1024  # two rounds of 512
    assert pretrain["round"] == 1 and pretrain["epoch"] == 2
    assert np.isfinite(pretrain["nll"]) and np.isfinite(pretrain["value_loss"])
    stats = json.loads((tmp_path / "run" / "pretrain.json").read_text())
    assert [(h["round"], h["epoch"]) for h in stats["history"]] == [(0, 1), (0, 2), (1, 1),
                                                                      (1, 2)]
    records = read_metrics(tmp_path / "run")
    assert records[0]["update"] == 0 and records[0]["pretrain/nll"] == pretrain["nll"]
    assert [r["update"] for r in records[1:]] == [5, 10, 15]  # log_every 5
    assert "pretrain: round 0  epoch 1" in out.err


def test_warm_start_returns_the_fitted_params_and_observation_statistics():
    config = load_config(None, [
        "env.id=jaximpala/Driving-easy-v0", "env.kwargs={camera: false}",
        "algo.unroll_length=16", "algo.value_normalization=popart",
        "network.use_lstm=true", "network.lstm_size=8", "network.torso_sizes=[16]",
        "network.vector_mlp_sizes=[16]", "pretrain.demo_env_steps=2400",
        "pretrain.num_envs=4", "pretrain.epochs=1"])
    env = make_vector_env(config.env.id, 1, config.env.kwargs)
    agent = make_agent(env.single_observation_space, env.single_action_space, config.network)
    env.close()
    fresh = initial_train_state(config, agent)
    state, stats, demos = warm_start(config, agent, fresh, key=jax.random.key(0))
    # 600 steps per env: the baseline finishes episodes (about 400 steps on `easy`).
    assert stats.demo_env_steps == 2400 and stats.demo_episodes["success_rate"] > 0
    assert demos.mask.shape == (600, 4)  # the recording, for an imitation term during RL
    assert len(stats.history) == 1 and stats.seconds > 0
    counts = {k: float(v["count"]) for k, v in state.params["obs_norm"].items()}
    assert set(counts.values()) == {601 * 4}  # every recorded observation, bootstrap too
    assert float(state.value_norm.mean[0]) != 0.0  # set from the demonstrated returns
    changed = jax.tree.map(lambda a, b: bool((a != b).any()), state.params["network"],
                           fresh.params["network"])
    assert all(jax.tree.leaves(changed))
    assert state.update_step == 0 and state.opt_state is fresh.opt_state


def test_pretrain_config_is_checked_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="scripted baseline"):
        load_config(None, ["env.id=CartPole-v1", "pretrain.demo_env_steps=1000"])
    with pytest.raises(ConfigError, match="fewer per env than one window"):
        load_config(None, ["pretrain.demo_env_steps=100", "pretrain.num_envs=4",
                           "algo.unroll_length=32"])
    with pytest.raises(ConfigError, match="action_noise"):
        load_config(None, ["pretrain.action_noise=-0.1"])


def test_clone_baseline_script_evaluates_the_clone(tmp_path):
    root = pathlib.Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(root / "experiments" / "clone_baseline.py"), "--episodes", "2",
         "pretrain.demo_env_steps=256", "pretrain.num_envs=4", "pretrain.epochs=1",
         "algo.unroll_length=32", "network.lstm_size=8", "network.torso_sizes=[16]",
         "network.vector_mlp_sizes=[16]"],
        cwd=root, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert lines[0]["round"] == 0 and lines[0]["epoch"] == 1
    summary = lines[-1]
    assert summary["demo_env_steps"] == 256
    for mode in ("sampled", "greedy"):
        assert 0.0 <= summary[mode]["success_rate"] <= 1.0
        assert summary[mode]["episode_length"] > 0
