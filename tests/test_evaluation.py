"""Evaluation on held-out seeds, and the eval / render / plot commands on a real run."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
import yaml

from jaximpala.cli import main
from jaximpala.config import load_config
from jaximpala.evaluation import (
    agent_policy,
    baseline_policy,
    evaluate,
    run_episodes,
    summarise,
)
from jaximpala.inline import agent_for_env, make_vector_env
from jaximpala.train import train

ROOT = pathlib.Path(__file__).resolve().parents[1]
NO_CAMERA = {"camera": False}


def test_summarise_is_the_mean_over_episodes_with_named_rates():
    episodes = [
        {"episode_return": 1.0, "episode_length": 10, "episode/is_success": 1.0,
         "episode/collision": 0.0, "episode/reward/progress": 2.0,
         "episode/episode_return": 55.0},  # a running sum: meaningless, left out
        {"episode_return": 3.0, "episode_length": 30, "episode/is_success": 0.0,
         "episode/collision": 1.0, "episode/reward/progress": 4.0,
         "episode/episode_return": 99.0},
    ]
    assert summarise(episodes) == {
        "episodes": 2, "episode_return": 2.0, "episode_length": 20.0, "success_rate": 0.5,
        "collision_rate": 0.5, "reward/progress": 3.0, "episode_return_std": 1.0}


def test_episode_j_is_seed_plus_j_whatever_the_chunk_size():
    def episodes(num_envs):
        env = make_vector_env("jaximpala/Driving-easy-v0", num_envs, NO_CAMERA)
        return run_episodes(env, baseline_policy(env), episodes=3, seed=40)

    by_one, by_two = episodes(1), episodes(2)
    assert by_one == by_two
    # Episode 1 is the first episode of a single env reset with seed 41.
    env = make_vector_env("jaximpala/Driving-easy-v0", 1, NO_CAMERA)
    assert run_episodes(env, baseline_policy(env), episodes=1, seed=41) == by_one[1:2]
    assert {"success_rate", "collision_rate", "offroad_rate", "reward/progress",
            "reward/goal"} <= set(summarise(by_one))


def test_greedy_evaluation_is_deterministic_and_sampling_follows_the_key():
    agent = agent_for_env("CartPole-v1")
    params = agent.init(jax.random.key(0))

    def result(greedy, key):
        env = make_vector_env("CartPole-v1", 2)
        return evaluate(env, agent_policy(agent, params, greedy=greedy,
                                          key=jax.random.key(key)), 4, seed=7)

    assert result(True, 0) == result(True, 1)
    assert result(False, 3) == result(False, 3)
    assert result(False, 3) != result(False, 4)


def test_the_baseline_refuses_other_envs():
    with pytest.raises(ValueError, match="only drives the jaximpala driving env"):
        baseline_policy(make_vector_env("CartPole-v1", 1))


@pytest.fixture(scope="module")
def driving_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "driving"
    config = load_config(ROOT / "configs" / "debug.yaml", [
        # Episodes cut at 40 steps keep evaluation quick.
        f"run_dir={run_dir}", "env.id=jaximpala/Driving-easy-v0", "env.kwargs.camera=false",
        "env.kwargs.max_episode_steps=40",
        "env.num_envs=4", "algo.batch_size=4", "total_env_steps=128", "eval.episodes=0",
        "eval.video_steps=4", "eval.seed=9", "logging.progress=false"])
    summary = train(config)
    assert summary["video"] == str(run_dir / "episode-2-seed9.gif")
    assert (run_dir / "episode-2-seed9.gif").read_bytes().startswith(b"GIF89a")
    return run_dir


def test_eval_command_reports_both_modes_on_held_out_seeds(driving_run, capsys):
    assert main(["eval", "--run", str(driving_run), "--episodes", "2", "--seed", "5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 2 and result["episodes"] == 2 and result["seed"] == 5
    for mode in ("deterministic", "stochastic"):
        assert result[mode]["episodes"] == 2
        assert {"success_rate", "collision_rate", "offroad_rate", "reward/progress"} <= set(
            result[mode])
    checkpoint = driving_run / "checkpoints" / "2"
    assert main(["eval", "--checkpoint", str(checkpoint), "--episodes", "2", "--seed",
                 "5"]) == 0
    assert json.loads(capsys.readouterr().out)["deterministic"] == result["deterministic"]


def test_eval_with_baseline_drives_the_runs_env_on_the_same_scenarios(driving_run, capsys):
    assert main(["eval", "--run", str(driving_run), "--episodes", "2", "--seed", "5",
                 "--with-baseline"]) == 0
    beside = json.loads(capsys.readouterr().out)["baseline"]
    # the run's kwargs hold: its episodes are cut at 40 steps like the agent's
    assert beside["episodes"] == 2 and beside["episode_length"] <= 40
    assert main(["eval", "--baseline", "--env", "jaximpala/Driving-easy-v0", "--episodes",
                 "2", "--seed", "5"]) == 0
    alone = json.loads(capsys.readouterr().out)["baseline"]
    assert alone["episode_length"] > 40  # the preset's own 1000-step limit
    assert main(["eval", "--baseline", "--with-baseline"]) == 2
    assert "--with-baseline and --with-random go with --run" in capsys.readouterr().err


def test_eval_with_random_is_seeded_and_reports_collisions_per_km(driving_run, capsys):
    args = ["eval", "--run", str(driving_run), "--episodes", "2", "--seed", "5",
            "--with-random"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)["random"]
    assert first["episodes"] == 2 and first["episode_length"] <= 40
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["random"] == first  # same seed, same actions
    assert main([*args[:-3], "--seed", "6", "--with-random"]) == 0
    assert json.loads(capsys.readouterr().out)["random"] != first
    if "violations_per_km" in first:  # only when the random actions moved the car
        assert "collisions_per_km" in first


def test_eval_baseline_and_bad_paths(capsys, tmp_path):
    assert main(["eval", "--baseline", "--env", "jaximpala/Driving-easy-v0", "--episodes",
                 "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["policy"] == "baseline" and result["baseline"]["episodes"] == 2
    assert main(["eval", "--run", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_render_writes_a_gif_with_the_overlay(driving_run, tmp_path, capsys):
    out = tmp_path / "episode.gif"
    assert main(["render", "--run", str(driving_run), "--max-steps", "6", "--every", "2",
                 "--out", str(out)]) == 0
    assert "3 frames" in capsys.readouterr().out
    data = out.read_bytes()
    assert data.startswith(b"GIF89a")
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    assert width == 256 + 200 and height >= 256


def test_braking_probe_bins_every_moving_step_of_each_policy(driving_run):
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "braking_probe.py"), "--run",
         str(driving_run), "--episodes", "4", "--seed", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["episodes"] == 4 and probe["seed"] == 5
    for policy in ("baseline", "sampled", "greedy"):
        bins = probe[policy]
        assert [b["ttc"] for b in bins] == ["0-1.5 s", "1.5-3 s", "3-6 s", "over 6 s",
                                            "not closing"]
        assert sum(b["steps"] for b in bins) > 0
        assert sum(b["share"] for b in bins) == pytest.approx(1.0)
        for b in bins:
            if b["steps"]:
                assert 0.0 <= b["braking"] <= 1.0 and 0.0 <= b["throttle"] <= 1.0


def test_overlay_panel_shows_every_reward_term():
    from jaximpala.envs.driving.config import REWARD_TERMS
    from jaximpala.render_run import LINE_HEIGHT, overlay

    info = {f"reward/{name}": np.array([-0.5]) for name in REWARD_TERMS}
    action = {"continuous": np.zeros((1, 3)), "discrete": np.zeros((1, 2), int)}
    frame = overlay(np.zeros((256, 256, 3), np.uint8), 7, action, info, -0.5, 3.0)
    panel = frame[:, 256:].max(axis=(1, 2))  # brightest pixel of each panel row
    lit_rows = np.flatnonzero(panel > 100)
    # 4 header lines, 5 controls, a gap, then one line per term: the last one is drawn
    # inside the canvas, one line-height below the one before it
    last_line_top = 4 + LINE_HEIGHT * (4 + 5 + 1 + len(REWARD_TERMS) - 1)
    assert frame.shape[0] >= last_line_top + LINE_HEIGHT
    assert lit_rows.max() >= last_line_top


def test_plot_draws_mean_and_band_across_seeds(driving_run, tmp_path, capsys):
    # Two seeds of one config, checkpointed at different intervals (which changes nothing
    # learned): one group, n=2, whose mean is the mean of the two curves.
    runs = []
    config = yaml.safe_load((driving_run / "config.yaml").read_text())
    for seed in (0, 1):
        run_dir = tmp_path / f"s{seed}"
        run_dir.mkdir()
        config["seed"], config["checkpoint"]["every_updates"] = seed, 10 + seed
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
        (run_dir / "metrics.jsonl").write_text("".join(
            json.dumps({"update": u, "env_steps": 100 * u, "episode_return": seed + u}) + "\n"
            for u in range(1, 11)))
        runs.append(str(run_dir))
    out = tmp_path / "curves.png"
    assert main(["plot", *runs, "--out", str(out), "--smooth", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    (group,) = summary["metrics"]["episode_return"].values()
    assert group["seeds"] == 2 and group["final_mean"] == pytest.approx(10.5)
    assert group["final_ci95"] == pytest.approx(1.96 * np.std([10, 11], ddof=1) / np.sqrt(2))
    assert out.read_bytes().startswith(b"\x89PNG")


def test_plot_groups_label_a_key_a_run_lacks_unset(tmp_path):
    from jaximpala.plot import group_runs

    runs = []
    # the old run predates pretrain.bc_coef: its default (0.0) is what it ran with
    for name, reward, extra in (("old", "{progress: 0.1}", ""),
                                ("new", "{progress: 0.1, tailgating: -0.1}",
                                 "pretrain: {bc_coef: 0.0}\n")):
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text(
            f"seed: 0\nenv: {{id: x, kwargs: {{reward: {reward}}}}}\nalgo: {{name: appo}}\n"
            + extra)
        runs.append(run_dir)
    groups = group_runs(runs)
    assert groups == {"env.kwargs.reward.tailgating=unset": [runs[0]],
                      "env.kwargs.reward.tailgating=-0.1": [runs[1]]}


def test_plot_labels_name_the_groups_in_the_order_given(tmp_path, capsys):
    runs = []
    for name, lr in (("b", 1e-3), ("a", 3e-4)):
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text(
            f"seed: 0\nenv: {{id: x}}\nalgo: {{name: appo, learning_rate: {lr}}}\n")
        (run_dir / "metrics.jsonl").write_text("".join(
            json.dumps({"env_steps": 100 * u, "success_rate": lr * u}) + "\n"
            for u in range(1, 4)))
        runs.append(str(run_dir))
    out = tmp_path / "curves.png"
    assert main(["plot", *runs, "--labels", "fast", "slow", "--smooth", "1",
                 "--out", str(out)]) == 0
    finals = {label: group["final_mean"] for label, group
              in json.loads(capsys.readouterr().out)["metrics"]["success_rate"].items()}
    assert finals == pytest.approx({"fast": 3e-3, "slow": 9e-4})
    assert main(["plot", *runs, "--labels", "one", "--out", str(out)]) == 2
    assert "1 --labels for 2 groups of runs" in capsys.readouterr().err
