"""`jaximpala train`: run directories, metrics, checkpoints, exact resume, signals, errors."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest
import yaml

from jaximpala.checkpoint import Checkpointer, _to_arrays
from jaximpala.cli import main
from jaximpala.config import load_config
from jaximpala.inline import agent_for_env
from jaximpala.logger import read_metrics
from jaximpala.runs import read_run_config
from jaximpala.train import initial_train_state, train
from tests import toy_envs

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEBUG = ROOT / "configs" / "debug.yaml"


def _run_cli(capsys, *argv):
    code = main(["train", *argv])
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err


def test_debug_config_trains_and_archives_a_reproducible_run_dir(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, lines, _ = _run_cli(capsys, "--config", "debug", f"run_dir={run_dir}", "seed=3")
    assert code == 0
    summary = json.loads(lines[-2])
    assert lines[-1] == str(run_dir) == summary["run_dir"]
    assert summary["updates"] == 16 and summary["env_steps"] == 4096
    assert summary["stopped"] is False and summary["eval"]["episodes"] == 4
    assert summary["eval"]["episode_return"] > 0
    # The archive: the resolved config reloads to the same config; command, source, versions.
    resolved = load_config(run_dir / "config.yaml")
    assert resolved == load_config(DEBUG, [f"run_dir={run_dir}", "seed=3"])
    assert (run_dir / "command.txt").read_text().split() == [
        "jaximpala", "train", "--config", "debug", f"run_dir={run_dir}", "seed=3"]
    git = json.loads((run_dir / "git.json").read_text())
    assert len(git["commit"]) == 40 and isinstance(git["dirty"], bool)
    versions = json.loads((run_dir / "versions.json").read_text())
    assert versions["packages"]["jax"] == jax.__version__
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    # Metrics: one record per update, in order, then the final evaluation.
    records = read_metrics(run_dir)
    assert [r["update"] for r in records] == [*range(1, 17), 16]
    assert {"loss", "entropy", "env_steps", "frames_per_second", "system/rss_mib"} <= set(
        records[0])
    assert records[-1]["eval/episode_return"] == summary["eval"]["episode_return"]
    # Checkpoints every 8 updates, the newest `keep` kept.
    assert Checkpointer(run_dir / "checkpoints").all_steps() == [8, 16]


def test_a_fresh_run_refuses_a_run_dir_that_has_checkpoints(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert _run_cli(capsys, "--config", "debug", f"run_dir={run_dir}",
                    "total_env_steps=256", "eval.episodes=0")[0] == 0
    code, _, err = _run_cli(capsys, "--config", "debug", f"run_dir={run_dir}")
    assert code == 2 and "already holds a run's checkpoints" in err and "--resume" in err


@pytest.mark.parametrize("argv, message", [
    (["algo.lr=1"], "algo.lr: unknown key"),
    (["algo.name=dqn"], "algo.name: must be one of ['impala', 'ppo', 'appo']"),
    (["env.num_envs=-1"], "env.num_envs: must be a positive int, got -1"),
    (["--config", "nope"], "--config nope: no such file"),
    (["--resume", "/nonexistent/run"], "/nonexistent/run is not a run directory"),
    (["env.kwargs.lane_assist_nudge=0.9"],
     "env.kwargs: driving.lane_assist_nudge must be in [0.0, 0.5], got 0.9"),
    (["env.kwargs.steering=angle", "env.kwargs.lane_assist_gap_time=3"],
     "env.kwargs: driving.lane_assist_gap_time is a lane-assist setting"),
    (["env.kwargs.steer=angle"], "env.kwargs: driving: unknown option(s) ['steer']"),
])
def test_config_errors_are_reported_before_anything_starts(argv, message, capsys, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, lines, err = _run_cli(capsys, *argv)
    assert code == 2 and message in err and not lines
    assert not (tmp_path / "runs").exists()


class StopAfter(threading.Event):
    """A stop event that reads as set from its `n`-th check on (the inline loop checks it
    once before each update), standing in for a SIGTERM after `n - 1` updates."""

    def __init__(self, n: int):
        super().__init__()
        self.checks, self.n = 0, n

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks >= self.n or super().is_set()


def _final_state(run_dir):
    config = load_config(run_dir / "config.yaml")
    agent = agent_for_env(config.env.id, config.env.kwargs, config.network)
    return Checkpointer(run_dir / "checkpoints").restore(initial_train_state(config, agent))


def test_an_interrupted_and_resumed_run_matches_an_uninterrupted_one_bit_for_bit(tmp_path):
    # An LSTM, a linear lr schedule and annealed entropy: every part of the train state and
    # of the collector (env, recurrent state, RNG, episode sums) must come back exactly.
    common = ["total_env_steps=2560", "checkpoint.every_updates=3", "eval.episodes=2",
              "logging.progress=false", "algo.lr_schedule=linear", "algo.entropy_coef_final=0",
              "network.use_lstm=true", "network.lstm_size=8"]
    whole = train(load_config(DEBUG, [f"run_dir={tmp_path / 'whole'}", *common]))
    part = train(load_config(DEBUG, [f"run_dir={tmp_path / 'part'}", *common]),
                 stop=StopAfter(5))
    assert part["stopped"] is True and part["updates"] == 4
    # Killed after update 4: its final checkpoint is at 4, the periodic one at 3.
    assert Checkpointer(tmp_path / "part" / "checkpoints").all_steps() == [3, 4]
    resumed = train(load_config(tmp_path / "part" / "config.yaml"),
                    resume_dir=tmp_path / "part")
    assert resumed["updates"] == whole["updates"] == 10
    assert resumed["eval"] == whole["eval"]
    a, b = _final_state(tmp_path / "whole"), _final_state(tmp_path / "part")
    assert a.step == b.step == 10
    for x, y in zip(jax.tree.leaves(_to_arrays(a.train_state)),
                    jax.tree.leaves(_to_arrays(b.train_state)), strict=True):
        np.testing.assert_array_equal(x, y)
    strip = lambda records: [{k: v for k, v in r.items() if k.startswith(("loss", "episode",
                                                                          "grad_norm"))}
                             for r in records]
    assert strip(read_metrics(tmp_path / "whole")) == strip(read_metrics(tmp_path / "part"))


def test_a_nonfinite_stop_keeps_the_last_good_checkpoint(tmp_path):
    toy_envs.register_blow_up()
    # Each update steps every env 32 times; with 10-step episodes and one autoreset step
    # (no env.step call) after each, an env has taken 59 steps after two updates, so its
    # rewards blow up in the third update; max_nonfinite_updates=2 ends the run in the fourth.
    config = load_config(DEBUG, [
        f"run_dir={tmp_path}", "env.id=jaximpala-test/BlowUp-v0", "env.kwargs.finite_steps=60",
        "checkpoint.every_updates=1", "checkpoint.keep=5", "algo.max_nonfinite_updates=2",
        "logging.progress=false"])
    summary = train(config)
    assert summary["error"].startswith("NonFiniteError: 2 consecutive updates")
    assert summary["updates"] == 4 and summary["last_checkpoint"] == 3
    steps = Checkpointer(tmp_path / "checkpoints").all_steps()
    assert steps == [1, 2, 3]
    restored = _final_state(tmp_path)
    leaves = jax.tree.leaves(restored.train_state.params)
    assert all(np.isfinite(x).all() for x in leaves)
    assert int(restored.train_state.nonfinite_streak) == 1


def test_sigterm_writes_a_checkpoint_and_resume_continues_the_run(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "jaximpala", "train", "--config", "debug",
           f"run_dir={run_dir}", "total_env_steps=100000000", "checkpoint.every_updates=0",
           "eval.episodes=0"]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 120
    while len(read_metrics(run_dir)) < 3:
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    summary = json.loads(out.splitlines()[-2])
    assert summary["stopped"] is True and "SIGTERM" in err
    stopped_at = summary["updates"]
    assert Checkpointer(run_dir / "checkpoints").all_steps() == [stopped_at]
    # Resume for 2 more updates (an override on resume is allowed and archived).
    resume = subprocess.run(
        [sys.executable, "-m", "jaximpala", "train", "--resume", str(run_dir),
         f"total_env_steps={(stopped_at + 2) * 256}"], env=env, capture_output=True,
        text=True, timeout=120)
    assert resume.returncode == 0, resume.stderr
    assert json.loads(resume.stdout.splitlines()[-2])["updates"] == stopped_at + 2
    assert [r["update"] for r in read_metrics(run_dir)] == list(range(1, stopped_at + 3))
    assert len((run_dir / "command.txt").read_text().splitlines()) == 2
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["total_env_steps"] == (
        stopped_at + 2) * 256


def test_a_resume_that_changes_the_env_starts_fresh_envs_with_the_new_settings(tmp_path, capsys):
    # The checkpoint's envs carry their old settings; restoring them would silently drop an
    # override such as a reward weight (here CartPole's reward: 0 per step, -1 at the end).
    common = [f"run_dir={tmp_path}", "checkpoint.every_updates=0", "eval.episodes=0",
              "logging.progress=false"]
    train(load_config(DEBUG, [*common, "total_env_steps=1024"]))
    train(read_run_config(tmp_path, ["total_env_steps=2048",
                                     "env.kwargs.sutton_barto_reward=true"]),
          resume_dir=tmp_path)
    assert "the envs start fresh with the new settings" in capsys.readouterr().err
    returns = {r["update"]: r["episode_return"] for r in read_metrics(tmp_path)
               if "episode_return" in r}
    assert all(r > 0 for u, r in returns.items() if u <= 4)
    assert [r for u, r in returns.items() if u > 4] and all(
        r <= 0 for u, r in returns.items() if u > 4)


def test_distributed_mode_without_the_runtime_module_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "jaximpala.runtime", None)  # as if not installed
    code, lines, err = _run_cli(capsys, "--config", "debug", "runtime.mode=distributed")
    assert code == 2 and not lines
    assert "runtime.mode=distributed: this installation has no jaximpala.runtime" in err


@pytest.mark.parametrize("greedy", [False, True])
def test_the_end_of_training_evaluation_acts_as_eval_greedy_says(greedy, monkeypatch):
    from jaximpala import evaluation
    from jaximpala import train as train_module

    seen = {}
    monkeypatch.setattr(evaluation, "evaluate_agent",
                        lambda *args, **kwargs: seen.update(kwargs) or {"episodes": 1})
    config = load_config(DEBUG, [f"eval.greedy={str(greedy).lower()}"])
    train_module._evaluate(config, agent=None, params=None)
    assert seen["greedy"] is greedy and seen["episodes"] == config.eval.episodes
