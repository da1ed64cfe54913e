import subprocess
import sys

from jaximpala import __version__
from jaximpala.cli import main


def test_version_flag(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "jaximpala", "--version"], capture_output=True, text=True,
        check=True,
    )
    assert out.stdout.strip() == __version__


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: jaximpala" in capsys.readouterr().out


def test_every_command_has_help(capsys):
    import pytest

    for command in ("train", "eval", "render", "plot"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: jaximpala {command}" in capsys.readouterr().out


def test_sigusr1_prints_every_threads_stack_of_the_learner_and_its_actor(tmp_path):
    """`kill -USR1` on a hung run's learner or actor shows where it waits; the run goes on
    and still stops cleanly."""
    import os
    import signal

    import psutil

    from tests.test_runtime import ROOT, _cmdline, _wait_for

    run_dir, stderr = tmp_path / "run", tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "jaximpala", "train", "--config", "cartpole_impala",
             f"run_dir={run_dir}", "total_env_steps=10000000", "logging.log_every=1",
             "logging.wandb_mode=disabled", "eval.episodes=0", "eval.video_steps=0",
             "runtime.mode=distributed", "runtime.num_actors=1"],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"),
            stdout=subprocess.DEVNULL, stderr=err)
    try:
        metrics = run_dir / "metrics.jsonl"
        _wait_for(lambda: metrics.exists() and metrics.read_text().count("\n") >= 2, 300,
                  "the run to train")
        actor, = (child for child in psutil.Process(process.pid).children()
                  if "spawn_main" in _cmdline(child))
        for pid in (process.pid, actor.pid):
            os.kill(pid, signal.SIGUSR1)
        _wait_for(lambda: "actor.py" in stderr.read_text() and "runtime.py" in
                  stderr.read_text(), 60, "the stacks")
        lines = metrics.read_text().count("\n")
        _wait_for(lambda: metrics.read_text().count("\n") > lines, 120, "training to go on")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "Thread 0x" in stderr.read_text()  # every thread, not only the current one
