"""Two learner processes on 127.0.0.1 joined by `jax.distributed` (gloo CPU collectives),
each with its own actor; every actor feeds both learners, process 0 publishes params."""

import json
import os
import socket
import subprocess
import sys

from tests.test_runtime import ROOT


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_learner_processes_average_gradients_and_share_actors(tmp_path):
    coordinator, params, params_request = _free_ports(3)
    trajectory = _free_ports(1)[0]  # learner i binds trajectory + i
    updates = 6
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
                        "coordinator_address": f"127.0.0.1:{coordinator}"},
        }
        (out / "config.json").write_text(json.dumps(config))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tests.distributed_harness", str(out / "config.json"),
             str(out)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")))
    try:
        for process in processes:
            assert process.wait(timeout=400) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    checkpoints = [(tmp_path / f"learner{i}" / "checkpoint.msgpack").read_bytes()
                   for i in range(2)]
    results = [json.loads((tmp_path / f"learner{i}" / "result.json").read_text())
               for i in range(2)]
    assert [r["env_steps"] for r in results] == [updates * 64] * 2
    # Each learner trained on different trajectories; identical params after every update
    # means the gradients were averaged across the two processes.
    assert checkpoints[0] == checkpoints[1]
    for i in range(2):  # both actors fed both learners
        lines = (tmp_path / f"learner{i}" / "updates.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["actors_seen"] == 2
