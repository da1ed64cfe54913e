"""The distributed-runtime fields of RuntimeConfig and their environment overrides."""

import types

import numpy as np
import pytest
import zmq

from jaximpala.config import AlgoConfig, RuntimeConfig, queue_capacity
from jaximpala.runtime import LearnerSockets, with_process_env
from jaximpala.transport.codec import MessageSpec

MULTI = {"num_processes": 2, "coordinator_address": "10.0.0.1:1234", "trajectory_port": 5555,
         "params_port": 5600, "params_request_port": 5601}


@pytest.mark.parametrize("make, field", [
    (lambda: RuntimeConfig(num_processes=2), "coordinator_address"),
    (lambda: RuntimeConfig(**{**MULTI, "trajectory_port": 0}), "trajectory_port"),
    (lambda: RuntimeConfig(**{**MULTI, "params_request_port": 0}), "params_request_port"),
    (lambda: RuntimeConfig(**MULTI, process_id=2), "process_id"),
    (lambda: RuntimeConfig(**MULTI, learner_hosts=("a",)), "learner_hosts"),
    (lambda: RuntimeConfig(restart_backoff_s=5.0, max_restart_backoff_s=1.0),
     "max_restart_backoff_s"),
    (lambda: RuntimeConfig(actor_start_timeout_s=0), "actor_start_timeout_s"),
    (lambda: RuntimeConfig(max_failed_starts=0), "max_failed_starts"),
    (lambda: RuntimeConfig(curve_keys_dir=""), "curve_keys_dir"),
    (lambda: RuntimeConfig(queue_size=0), "queue_size"),
    (lambda: RuntimeConfig(queue_size=2.5), "queue_size"),
])
def test_invalid_fields_are_named(make, field):
    with pytest.raises(ValueError, match=rf"RuntimeConfig\.{field}"):
        make()


def test_the_default_queue_holds_two_batches_of_unrolls():
    algo = AlgoConfig(batch_size=32)
    assert queue_capacity(RuntimeConfig(), algo, num_envs=16) == 4  # 2 unrolls per batch
    assert queue_capacity(RuntimeConfig(), algo, num_envs=32) == 2
    assert queue_capacity(RuntimeConfig(queue_size=64), algo, num_envs=16) == 64


def test_learner_hosts_from_yaml_lists_become_tuples():
    config = RuntimeConfig(**MULTI, learner_hosts=["a", "b"])
    assert config.learner_hosts == ("a", "b")


def test_process_fields_come_from_the_environment():
    base = RuntimeConfig(**{**MULTI, "num_processes": 1})
    assert with_process_env(base, {}) is base
    slurm = with_process_env(base, {"SLURM_NTASKS": "2", "SLURM_PROCID": "1"})
    assert (slurm.num_processes, slurm.process_id) == (2, 1)
    ours = with_process_env(base, {"SLURM_NTASKS": "4", "SLURM_PROCID": "3",
                                   "JAXIMPALA_NUM_PROCESSES": "2",
                                   "JAXIMPALA_PROCESS_ID": "0",
                                   "JAXIMPALA_COORDINATOR_ADDRESS": "h:1"})
    assert (ours.num_processes, ours.process_id, ours.coordinator_address) == (2, 0, "h:1")
    with pytest.raises(ValueError, match=r"RuntimeConfig\.process_id"):
        with_process_env(base, {"SLURM_NTASKS": "2", "SLURM_PROCID": "2"})


def test_the_learner_reads_its_sockets_with_the_configured_io_threads():
    spec = MessageSpec.from_example({".rewards": np.ones((4, 2), np.float32)},
                                    meta_fields=("sequence",))
    sockets = LearnerSockets(RuntimeConfig(mode="distributed", io_threads=3),
                             types.SimpleNamespace(spec=spec))
    try:
        assert sockets.context.get(zmq.IO_THREADS) == 3
    finally:
        sockets.close()
