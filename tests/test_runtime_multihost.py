"""Two learner processes on 127.0.0.1 joined by `jax.distributed` (gloo CPU collectives),
each with its own actor; every actor feeds both learners, process 0 publishes params."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil

from tests.test_runtime import ROOT, _wait_for


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_learners(tmp_path, updates: int, **runtime) -> list[subprocess.Popen]:
    """Two learner processes (one actor each) of a CartPole run of `updates` updates."""
    coordinator, params, params_request = _free_ports(3)
    trajectory = _free_ports(1)[0]  # learner i binds trajectory + i
    processes = []
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
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tests.distributed_harness", str(out / "config.json"),
             str(out)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")))
    return processes


def _complete_lines(path) -> list[str]:
    """The complete lines of a learner's JSON-lines file (it may be mid-write)."""
    text = path.read_text() if path.exists() else ""
    return text[:text.rfind("\n") + 1].splitlines()


def _last_update(path) -> dict | None:
    """The last complete line of a learner's updates.jsonl."""
    lines = _complete_lines(path)
    return json.loads(lines[-1]) if lines else None


def _all_running(processes) -> bool:
    """True while every learner runs; fails, naming how the others ended, otherwise."""
    ended = [(p.returncode, (p.communicate()[1] or "")[-2000:])
             for p in processes if p.poll() is not None]
    assert not ended, f"a learner ended early (code, stderr): {ended}"
    return True


def _kill_survivors(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()


def test_two_learner_processes_average_gradients_and_share_actors(tmp_path):
    """The run goes on until both learners have had trajectories from both actors (how
    long depends on which actor compiles `act` first), then SIGTERM to learner 0 alone
    must stop both after the same update, with the same params."""
    processes = _start_learners(tmp_path, 100_000)
    logs = [tmp_path / f"learner{i}" / "updates.jsonl" for i in range(2)]
    try:
        _wait_for(lambda: _all_running(processes) and all(
            (u := _last_update(log)) and u["actors_seen"] == 2 and u["update"] >= 3
            for log in logs), 300, "both actors to feed both learners")
        processes[0].send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(timeout=120) == 0
    finally:
        _kill_survivors(processes)
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
    processes = _start_learners(tmp_path, 100_000, peer_timeout_s=peer_timeout_s)
    try:
        _wait_for(lambda: _all_running(processes) and _updates_written(
            tmp_path / "learner1" / "updates.jsonl") >= 3, 300, "the learners to train together")
        survivor = psutil.Process(processes[0].pid)
        actors = survivor.children(recursive=True)
        processes[1].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        returncode = processes[0].wait(timeout=peer_timeout_s + 90)
        waited = time.monotonic() - killed_at
        print(f"learner 0 ended {waited:.1f} s after its peer was killed, code {returncode}")
        assert returncode != 0
        _, alive = psutil.wait_procs(actors, timeout=15)
        assert alive == []
    finally:
        _kill_survivors(processes)


def _start_train_processes(run_dir, *argv: str) -> list[subprocess.Popen]:
    """`jaximpala train ... argv` as learner processes 0 and 1 of one CartPole run."""
    coordinator, trajectory, params, params_request = _free_ports(4)
    processes = []
    for process_id in range(2):
        command = [
            sys.executable, "-m", "jaximpala", "train", *argv, "logging.log_every=1",
            "logging.wandb_mode=disabled", "eval.episodes=0", "eval.video_steps=0",
            "runtime.mode=distributed", "runtime.num_actors=1",
            f"runtime.trajectory_port={trajectory}", f"runtime.params_port={params}",
            f"runtime.params_request_port={params_request}"]
        environ = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu",
                       JAXIMPALA_COORDINATOR_ADDRESS=f"127.0.0.1:{coordinator}",
                       JAXIMPALA_NUM_PROCESSES="2", JAXIMPALA_PROCESS_ID=str(process_id))
        processes.append(subprocess.Popen(command, cwd=ROOT, env=environ, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return processes


def _sigterm_process_0_after(processes, metrics_files, updates: int) -> list[dict]:
    """Waits until every metrics file has `updates` lines, SIGTERMs learner 0 alone and
    returns both learners' summaries (they must exit 0)."""
    try:
        _wait_for(lambda: _all_running(processes) and all(
            _updates_written(m) >= updates for m in metrics_files), 300,
            "the learners to train together")
        processes[0].send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=120) for p in processes]
    finally:
        _kill_survivors(processes)
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]
    return [json.loads(out.splitlines()[-2]) for out, _ in outputs]


def test_jaximpala_train_on_two_hosts_stops_on_sigterm_and_resumes(tmp_path):
    """The issue's launch: the same `jaximpala train` command per learner process, one
    shared run_dir (it must join jax.distributed before its first JAX computation). SIGTERM
    to process 0 alone stops both after the same update; process 0 writes the checkpoint
    and the run's metrics, and `--resume` on both continues from that update."""
    run_dir = tmp_path / "run"
    metrics = [run_dir / "metrics.jsonl", run_dir / "metrics.process1.jsonl"]
    summaries = _sigterm_process_0_after(_start_train_processes(
        run_dir, "--config", "cartpole_impala", f"run_dir={run_dir}",
        "total_env_steps=10000000"), metrics, 3)
    assert [s["stopped"] for s in summaries] == [True, True]
    stopped_at = summaries[0]["updates"]
    assert summaries[1]["updates"] == stopped_at >= 3
    assert str(stopped_at) in [p.name for p in (run_dir / "checkpoints").iterdir()]
    written = [json.loads(line)["update"] for line in metrics[0].read_text().splitlines()]
    assert written == list(range(1, stopped_at + 1))  # one writer, every update once

    summaries = _sigterm_process_0_after(_start_train_processes(
        run_dir, "--resume", str(run_dir)), metrics, stopped_at + 3)
    assert summaries[0]["updates"] == summaries[1]["updates"] >= stopped_at + 3
    written = [json.loads(line)["update"] for line in metrics[0].read_text().splitlines()]
    assert written == list(range(1, summaries[0]["updates"] + 1))
