"""Two learner processes on 127.0.0.1 joined by `jax.distributed` (gloo CPU collectives),
each with its own actor; every actor feeds both learners, process 0 publishes params.

Each learner's stdout and stderr go to files (a pipe nobody reads until the end could fill
and stall a learner), and Python's faulthandler is on: if the learners do not get where a
test waits for them, they are aborted and the failure shows every thread's stack."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import psutil

from tests.test_runtime import ROOT, _wait_for

WAIT_S = 300


class _Learner(NamedTuple):
    process: subprocess.Popen
    stdout: Path
    stderr: Path


def _popen(command: list[str], out_dir: Path, name: str, **environ) -> _Learner:
    stdout, stderr = out_dir / f"{name}.stdout", out_dir / f"{name}.stderr"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=err,
            env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", PYTHONFAULTHANDLER="1",
                     **environ))
    return _Learner(process, stdout, stderr)


def _free_ports(count: int, *, with_successor: int = 0) -> list[int]:
    """`count` distinct ports nobody listens on; for the first `with_successor` of them the
    next port is free too (learner i of a run binds `trajectory_port + i`)."""
    held, ports = [], []
    while len(ports) < count:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        held.append(s)
        port = s.getsockname()[1]
        if len(ports) < with_successor:
            successor = socket.socket()
            held.append(successor)
            try:
                successor.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        ports.append(port)
    for s in held:  # held until every port is picked, so that none is picked twice
        s.close()
    return ports


def _start_learners(tmp_path, updates: int, **runtime) -> list[_Learner]:
    """Two learner processes (one actor each) of a CartPole run of `updates` updates."""
    trajectory, coordinator, params, params_request = _free_ports(4, with_successor=1)
    learners = []
    for process_id in range(2):
        out = tmp_path / f"learner{process_id}"
        out.mkdir()
        config = {
            "env": {"id": "CartPole-v1", "num_envs": 4},
            "algo": {"unroll_length": 8, "batch_size": 8},
            "network": {"vector_mlp_sizes": [16], "torso_sizes": [16]},
            "seed": 3, "total_env_steps": updates * 8 * 8,
            "runtime": {"mode": "distributed", "num_actors": 1, "queue_size": 4,
                        "trajectory_port": trajectory, "params_port": params,
                        "params_request_port": params_request, "num_processes": 2,
                        "process_id": process_id,
                        "coordinator_address": f"127.0.0.1:{coordinator}", **runtime},
        }
        (out / "config.json").write_text(json.dumps(config))
        learners.append(_popen([sys.executable, "-m", "tests.distributed_harness",
                                str(out / "config.json"), str(out)], out, "learner"))
    return learners


def _complete_lines(path) -> list[str]:
    """The complete lines of a learner's JSON-lines file (it may be mid-write)."""
    text = path.read_text() if path.exists() else ""
    return text[:text.rfind("\n") + 1].splitlines()


def _last_update(path) -> dict | None:
    """The last complete line of a learner's updates.jsonl."""
    lines = _complete_lines(path)
    return json.loads(lines[-1]) if lines else None


def _stderr_tails(learners, chars: int = 6000) -> str:
    return "\n".join(f"--- learner {i} (code {learner.process.returncode}), end of stderr:\n"
                     f"{learner.stderr.read_text()[-chars:]}"
                     for i, learner in enumerate(learners))


def _all_running(learners) -> bool:
    """True while every learner runs; fails, with their stderr, otherwise."""
    assert all(learner.process.poll() is None for learner in learners), (
        f"a learner ended early\n{_stderr_tails(learners)}")
    return True


def _wait_while_running(learners, condition, what: str) -> None:
    """Waits for `condition` while every learner runs. Past `WAIT_S`, every learner is
    aborted (SIGABRT: faulthandler prints each thread's stack) and the failure shows where
    each one was."""
    try:
        _wait_for(lambda: _all_running(learners) and condition(), WAIT_S, what)
    except AssertionError as error:
        if any(learner.process.poll() is not None for learner in learners):
            raise  # `_all_running`'s failure: a learner ended early, its stderr is shown
        for learner in learners:
            learner.process.send_signal(signal.SIGABRT)
        for learner in learners:
            try:
                learner.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                learner.process.kill()
        raise AssertionError(f"{error}\n{_stderr_tails(learners, 20_000)}") from None


def _kill_survivors(learners) -> None:
    for learner in learners:
        if learner.process.poll() is None:
            learner.process.kill()
        learner.process.wait()


def test_two_learner_processes_average_gradients_and_share_actors(tmp_path):
    """The run goes on until both learners have had trajectories from both actors (how
    long depends on which actor compiles `act` first), then SIGTERM to learner 0 alone
    must stop both after the same update, with the same params."""
    learners = _start_learners(tmp_path, 100_000)
    logs = [tmp_path / f"learner{i}" / "updates.jsonl" for i in range(2)]
    try:
        _wait_while_running(learners, lambda: all(
            (u := _last_update(log)) and u["actors_seen"] == 2 and u["update"] >= 3
            for log in logs), "both actors to feed both learners")
        learners[0].process.send_signal(signal.SIGTERM)
        for learner in learners:
            assert learner.process.wait(timeout=120) == 0, _stderr_tails(learners)
    finally:
        _kill_survivors(learners)
    checkpoints = [(tmp_path / f"learner{i}" / "checkpoint.msgpack").read_bytes()
                   for i in range(2)]
    results = [json.loads((tmp_path / f"learner{i}" / "result.json").read_text())
               for i in range(2)]
    # Learner 1 was never signalled: it stopped because its peer did, after the same update.
    assert [r["stopped"] for r in results] == [True, True]
    assert results[0]["env_steps"] == results[1]["env_steps"] >= 3 * 64
    # Each learner trained on different trajectories; identical params after every update
    # means the gradients were averaged across the two processes.
    assert checkpoints[0] == checkpoints[1]


def _updates_written(path) -> int:
    return len(_complete_lines(path))


def test_a_killed_learner_stops_its_peer_within_the_peer_timeout(tmp_path):
    """kill -9 learner 1 mid-run: learner 0 must not wait in the collectives for ever; it
    ends (with an error) once the peer has been silent for `peer_timeout_s`, and takes its
    actor with it."""
    peer_timeout_s = 10
    learners = _start_learners(tmp_path, 100_000, peer_timeout_s=peer_timeout_s)
    survivor, killed = (learner.process for learner in learners)
    try:
        _wait_while_running(learners, lambda: _updates_written(
            tmp_path / "learner1" / "updates.jsonl") >= 3, "the learners to train together")
        actors = psutil.Process(survivor.pid).children(recursive=True)
        killed.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        returncode = survivor.wait(timeout=peer_timeout_s + 90)
        waited = time.monotonic() - killed_at
        print(f"learner 0 ended {waited:.1f} s after its peer was killed, code {returncode}")
        assert returncode != 0
        _, alive = psutil.wait_procs(actors, timeout=15)
        assert alive == []
    finally:
        _kill_survivors(learners)


def _start_train_processes(run_dir: Path, out_dir: Path, *argv: str) -> list[_Learner]:
    """`jaximpala train ... argv` as learner processes 0 and 1 of one CartPole run, their
    output in `out_dir`."""
    trajectory, coordinator, params, params_request = _free_ports(4, with_successor=1)
    out_dir.mkdir()
    learners = []
    for process_id in range(2):
        command = [
            sys.executable, "-m", "jaximpala", "train", *argv, "logging.log_every=1",
            "logging.wandb_mode=disabled", "eval.episodes=0", "eval.video_steps=0",
            "runtime.mode=distributed", "runtime.num_actors=1",
            f"runtime.trajectory_port={trajectory}", f"runtime.params_port={params}",
            f"runtime.params_request_port={params_request}"]
        learners.append(_popen(
            command, out_dir, f"learner{process_id}",
            JAXIMPALA_COORDINATOR_ADDRESS=f"127.0.0.1:{coordinator}",
            JAXIMPALA_NUM_PROCESSES="2", JAXIMPALA_PROCESS_ID=str(process_id)))
    return learners


def _sigterm_process_0_after(learners, metrics_files, updates: int) -> list[dict]:
    """Waits until every metrics file has `updates` lines, SIGTERMs learner 0 alone and
    returns both learners' summaries (they must exit 0)."""
    try:
        _wait_while_running(learners, lambda: all(
            _updates_written(m) >= updates for m in metrics_files),
            "the learners to train together")
        learners[0].process.send_signal(signal.SIGTERM)
        codes = [learner.process.wait(timeout=120) for learner in learners]
    finally:
        _kill_survivors(learners)
    assert codes == [0, 0], _stderr_tails(learners)
    return [json.loads(learner.stdout.read_text().splitlines()[-2]) for learner in learners]


def test_jaximpala_train_on_two_hosts_stops_on_sigterm_and_resumes(tmp_path):
    """The issue's launch: the same `jaximpala train` command per learner process, one
    shared run_dir (it must join jax.distributed before its first JAX computation). SIGTERM
    to process 0 alone stops both after the same update; process 0 writes the checkpoint
    and the run's metrics, and `--resume` on both continues from that update."""
    run_dir = tmp_path / "run"
    metrics = [run_dir / "metrics.jsonl", run_dir / "metrics.process1.jsonl"]
    summaries = _sigterm_process_0_after(_start_train_processes(
        run_dir, tmp_path / "first", "--config", "cartpole_impala", f"run_dir={run_dir}",
        "total_env_steps=10000000"), metrics, 3)
    assert [s["stopped"] for s in summaries] == [True, True]
    stopped_at = summaries[0]["updates"]
    assert summaries[1]["updates"] == stopped_at >= 3
    assert str(stopped_at) in [p.name for p in (run_dir / "checkpoints").iterdir()]
    written = [json.loads(line)["update"] for line in metrics[0].read_text().splitlines()]
    assert written == list(range(1, stopped_at + 1))  # one writer, every update once

    summaries = _sigterm_process_0_after(_start_train_processes(
        run_dir, tmp_path / "resumed", "--resume", str(run_dir)), metrics, stopped_at + 3)
    assert summaries[0]["updates"] == summaries[1]["updates"] >= stopped_at + 3
    written = [json.loads(line)["update"] for line in metrics[0].read_text().splitlines()]
    assert written == list(range(1, summaries[0]["updates"] + 1))
