"""Sweep grids and commands, and the W&B sweep file, against the real config loader."""

import pathlib
import sys

import yaml

from jaximpala.config import load_config
from jaximpala.sweep import grid, run_parallel, sweep_commands

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_grid_is_the_cartesian_product():
    assert grid({"a": [1, 2], "b": ["x", "y", "z"]}) == [
        {"a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")]
    assert grid({}) == [{}]


def test_sweep_commands_are_valid_train_commands_with_distinct_run_dirs():
    commands = sweep_commands("lr", "configs/driving_appo.yaml",
                              {"algo.learning_rate": [1e-4, 1e-3]}, seeds=range(3),
                              overrides=["total_env_steps=1000"])
    assert len(commands) == 6
    run_dirs = set()
    for command in commands:
        assert command[:4] == ["jaximpala", "train", "--config", "configs/driving_appo.yaml"]
        config = load_config(ROOT / command[3], command[4:])
        assert config.logging.group == "lr" and config.total_env_steps == 1000
        run_dirs.add(config.run_dir)
    assert len(run_dirs) == 6
    assert {c.seed for c in (load_config(ROOT / commands[0][3], commands[i][4:])
                             for i in range(3))} == {0, 1, 2}


def test_run_parallel_runs_every_command_and_reports_exit_codes(tmp_path):
    commands = [[sys.executable, "-c", f"import sys; sys.exit({code})", f"run_dir={tmp_path}/{i}"]
                for i, code in enumerate([0, 3, 0])]
    assert run_parallel(commands, parallel=2, poll_s=0.05) == [0, 3, 0]
    assert (tmp_path / "1.log").exists()


def test_wandb_sweep_parameters_are_config_keys():
    sweep = yaml.safe_load((ROOT / "experiments" / "wandb_sweep_driving.yaml").read_text())
    fixed = [a for a in sweep["command"] if "=" in a]
    for values in grid({k: v["values"] for k, v in sweep["parameters"].items()})[:3]:
        load_config(ROOT / "configs" / "driving_appo.yaml",
                    [*fixed, *(f"{k}={v}" for k, v in values.items())])
