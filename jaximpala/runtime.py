"""`runtime=distributed`: actor processes stream trajectories over ZeroMQ to this learner.

`train_distributed` mirrors `inline.train_inline` (same learner, same per-update metrics
keys, same `InlineResult`) with the collection moved to `runtime.num_actors` spawned actor
processes (`jaximpala.actor`) and the intake to `prefetch`'s receiver and batcher threads.
A `Supervisor` thread restarts any actor that dies or goes silent, with backoff. Setting
`stop` (the CLI does on SIGTERM / Ctrl-C) ends the run after the update in progress: every
actor is stopped (SIGTERM, then SIGKILL after a grace period), every thread joined and every
socket closed before it returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable

import jax
import numpy as np
import zmq

from jaximpala.actor import ActorSpec, run_actor
from jaximpala.agent import make_agent
from jaximpala.config import (
    AlgoConfig,
    EnvConfig,
    RuntimeConfig,
    frames_per_update,
    num_updates,
    queue_capacity,
)
from jaximpala.inline import InlineResult, make_vector_env
from jaximpala.learner import Learner
from jaximpala.networks import NetworkConfig
from jaximpala.prefetch import Batch, Batcher, Receiver
from jaximpala.rollout import Collector
from jaximpala.transport.reports import ActorReport
from jaximpala.transport.sockets import (
    TRAJECTORY_HWM,
    Curve,
    ParamsServer,
    bind,
    make_socket,
    start_authenticator,
    trajectory_socket_buffer,
)
from jaximpala.transport.trajectories import TrajectoryCodec

LOG = logging.getLogger(__name__)
POLL_S = 0.1
STOP_GRACE_S = 3.0  # SIGTERM to SIGKILL; well inside the 10 s a stop may take


class ActorCrashLoop(RuntimeError):
    """An actor keeps dying before it ever reports."""


@dataclasses.dataclass
class _Slot:
    """One actor position: its current process and its restart bookkeeping."""

    actor_id: int
    incarnation: int = -1
    process: multiprocessing.process.BaseProcess | None = None
    last_seen: float = 0.0
    reported: bool = False  # the current incarnation has reported at least once
    failures: int = 0  # deaths in a row without a report in between
    restart_at: float = 0.0


class Supervisor:
    """Starts `num_actors` actor processes and keeps them alive.

    An actor that exits (crash, kill -9) or stays silent (hung, SIGSTOP-ed) for
    `start_timeout_s` from its start to its first report, or `timeout_s` between reports,
    is killed and restarted as a new
    incarnation after `backoff_s * 2**(failures - 1)` seconds (at most `max_backoff_s`).
    `heard_from` is called for every report. `poll` runs on a thread started by `start`;
    a thread that lives as long as the actors, since their parent-death signal is tied to
    the thread that spawned them.

    Args:
      spec_for: `(actor_id, incarnation) -> ActorSpec`.
      target: the process entry point, called with the spec.
    """

    def __init__(self, spec_for: Callable[[int, int], ActorSpec], num_actors: int, *,
                 timeout_s: float, start_timeout_s: float, backoff_s: float, max_backoff_s: float,
                 max_failed_starts: int, target: Callable[[ActorSpec], None] = run_actor):
        self._spec_for = spec_for
        self._target = target
        self._slots = [_Slot(i) for i in range(num_actors)]
        self._timeout_s, self._start_timeout_s = timeout_s, start_timeout_s
        self._backoff_s, self._max_backoff_s = backoff_s, max_backoff_s
        self._max_failed_starts = max_failed_starts
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._last_poll = time.monotonic()
        self.restarts = 0
        self.error: BaseException | None = None

    def start(self):
        self._thread.start()

    def heard_from(self, actor_id: int, incarnation: int) -> None:
        with self._lock:
            if 0 <= actor_id < len(self._slots):
                slot = self._slots[actor_id]
                if slot.incarnation == incarnation:
                    slot.last_seen = time.monotonic()
                    slot.reported, slot.failures = True, 0

    def pids(self) -> dict[int, int]:
        """actor id -> pid of its live process."""
        with self._lock:
            return {s.actor_id: s.process.pid for s in self._slots
                    if s.process is not None and s.process.is_alive()}

    def _watch(self):
        try:
            while not self._stop_event.wait(POLL_S):
                self.poll()
        except BaseException as error:  # surfaced to the training loop, never swallowed
            self.error = error

    def poll(self) -> None:
        now = time.monotonic()
        with self._lock:
            # If this process itself was not running (SIGSTOP, swapped out), its actors
            # could not be heard either: that silence is not theirs.
            gap = now - self._last_poll - POLL_S
            if gap > 1.0:
                for slot in self._slots:
                    slot.last_seen += gap
            self._last_poll = now
            for slot in self._slots:
                if slot.process is None:
                    if now >= slot.restart_at:
                        self._spawn(slot, now)
                elif not slot.process.is_alive():
                    self._retire(slot, now, f"exited with code {slot.process.exitcode}")
                elif now - slot.last_seen > (timeout := self._timeout_for(slot)):
                    slot.process.kill()
                    slot.process.join(1.0)
                    self._retire(slot, now, f"was silent for {timeout:.0f} s; killed")

    def _timeout_for(self, slot: _Slot) -> float:
        return self._timeout_s if slot.reported else self._start_timeout_s

    def _spawn(self, slot: _Slot, now: float):
        if slot.incarnation >= 0:
            self.restarts += 1
        slot.incarnation += 1
        spec = self._spec_for(slot.actor_id, slot.incarnation)
        process = self._context.Process(target=self._target, args=(spec,), daemon=True,
                                        name=f"jaximpala-actor-{slot.actor_id}")
        process.start()
        slot.process = process
        slot.last_seen, slot.reported = now, False

    def _retire(self, slot: _Slot, now: float, why: str):
        slot.process.close()
        slot.process = None
        slot.failures += 1
        if not slot.reported and slot.failures >= self._max_failed_starts:
            raise ActorCrashLoop(
                f"actor {slot.actor_id} {why}, its {slot.failures}th death in a row before "
                "reporting anything (see its traceback above)")
        delay = min(self._max_backoff_s, self._backoff_s * 2 ** (slot.failures - 1))
        slot.restart_at = now + delay
        LOG.warning("actor %d (incarnation %d) %s; restarting in %.1f s", slot.actor_id,
                    slot.incarnation, why, delay)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM every actor, SIGKILL those still alive after `grace_s`, reap them all."""
        self._stop_event.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            processes = [s.process for s in self._slots if s.process is not None]
            for process in processes:
                if process.is_alive():
                    process.terminate()
            deadline = time.monotonic() + grace_s
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
            for slot in self._slots:
                if slot.process is not None:
                    slot.process.close()
                    slot.process = None


def example_trajectory(env: EnvConfig, algo: AlgoConfig, agent, params, seed: int):
    """One real unroll `[T(+1), N, ...]` from a throwaway env: the shape of every message."""
    vector_env = make_vector_env(env.id, env.num_envs, env.kwargs)
    try:
        collector = Collector(vector_env, agent, unroll_length=algo.unroll_length,
                              gamma=algo.gamma, key=jax.random.key(seed), seed=seed)
        return collector.collect(params, 0)[0]
    finally:
        vector_env.close()


class LearnerSockets:
    """The learner's bound sockets; `close` releases them all."""

    def __init__(self, runtime: RuntimeConfig, codec: TrajectoryCodec):
        curve = Curve.server(runtime.curve_keys_dir) if runtime.curve_keys_dir else None
        self.context = zmq.Context(io_threads=runtime.io_threads)
        self.auth = start_authenticator(self.context, curve)
        self.trajectories = make_socket(self.context, zmq.PULL, curve=curve,
                                        hwm=TRAJECTORY_HWM,
                                        kernel_buffer=trajectory_socket_buffer(
                                            codec.spec.payload_bytes),
                                        max_message_bytes=codec.spec.max_message_bytes)
        self.reports = make_socket(self.context, zmq.PULL, curve=curve, hwm=16,
                                   max_message_bytes=1024 * 1024)
        port = runtime.trajectory_port and runtime.trajectory_port + runtime.process_id
        self.trajectory_endpoint = bind(self.trajectories, runtime.host, port)
        self.report_endpoint = bind(self.reports, runtime.host, runtime.report_port)
        self.params = None  # only process 0 publishes params
        if runtime.process_id == 0:
            self.params = ParamsServer(self.context, runtime.host,
                                       pub_port=runtime.params_port,
                                       rep_port=runtime.params_request_port, curve=curve)
        hosts = runtime.learner_hosts or (runtime.host,) * runtime.num_processes
        if runtime.num_processes == 1:
            self.all_trajectory_endpoints = (self.trajectory_endpoint,)
            self.params_endpoints = (self.params.pub_endpoint, self.params.rep_endpoint)
        else:
            self.all_trajectory_endpoints = tuple(
                f"tcp://{h}:{runtime.trajectory_port + i}" for i, h in enumerate(hosts))
            self.params_endpoints = (f"tcp://{hosts[0]}:{runtime.params_port}",
                                     f"tcp://{hosts[0]}:{runtime.params_request_port}")

    def publish(self, version: int, params) -> None:
        if self.params is not None:
            self.params.publish(version, params)

    def close(self):
        if self.params is not None:
            self.params.close()
        self.trajectories.close(linger=0)
        self.reports.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        self.context.term()


def actor_specs(env: EnvConfig, algo: AlgoConfig, network: NetworkConfig | None, seed: int,
                sockets: LearnerSockets, runtime: RuntimeConfig
                ) -> Callable[[int, int], ActorSpec]:
    """`(actor_id, incarnation) -> ActorSpec` of actors feeding `sockets`' learner."""

    def spec_for(slot: int, incarnation: int) -> ActorSpec:
        # Actor ids are unique over all learner processes (their keys and seeds differ).
        return ActorSpec(
            actor_id=runtime.process_id * runtime.num_actors + slot, incarnation=incarnation,
            env_id=env.id, num_envs=env.num_envs, env_kwargs=dict(env.kwargs),
            unroll_length=algo.unroll_length, gamma=algo.gamma, network=network,
            seed=seed, trajectory_endpoints=sockets.all_trajectory_endpoints,
            report_endpoint=sockets.report_endpoint,
            params_pub_endpoint=sockets.params_endpoints[0],
            params_rep_endpoint=sockets.params_endpoints[1],
            curve_keys_dir=runtime.curve_keys_dir, parent_pid=os.getpid())

    return spec_for


def make_supervisor(spec_for: Callable[[int, int], ActorSpec], runtime: RuntimeConfig
                    ) -> Supervisor:
    """A `Supervisor` of `runtime.num_actors` actors with the runtime's timeouts."""
    return Supervisor(
        spec_for, runtime.num_actors, timeout_s=runtime.actor_timeout_s,
        start_timeout_s=runtime.actor_start_timeout_s, backoff_s=runtime.restart_backoff_s,
        max_backoff_s=runtime.max_restart_backoff_s,
        max_failed_starts=runtime.max_failed_starts)


def _raise_thread_errors(*workers) -> None:
    for worker in workers:
        if worker.error is not None:
            raise RuntimeError(f"{type(worker).__name__} thread failed") from worker.error


def _wait_for_batch(batcher: Batcher, stop: threading.Event, workers) -> Batch | None:
    while not stop.is_set():
        _raise_thread_errors(*workers)
        try:
            return batcher.batches.get(timeout=POLL_S)
        except queue.Empty:
            continue
    return None


def _report_metrics(reports: list[ActorReport], seconds: float) -> dict:
    episodes = [e for r in reports for e in r.episodes]
    metrics = {
        "episodes": len(episodes),
        "env_step_seconds": sum(r.env_seconds for r in reports),
        "inference_seconds": sum(r.inference_seconds for r in reports),
        "actor_steps_per_s": sum(r.env_steps for r in reports) / max(seconds, 1e-9),
    }
    if reports:
        metrics["policy_version_acting_mean"] = float(np.mean([r.policy_version
                                                               for r in reports]))
        metrics["actor_max_rss_bytes"] = max(r.max_rss_bytes for r in reports)
    if episodes:
        metrics["episode_return"] = sum(e["episode_return"] for e in episodes) / len(episodes)
    return metrics


def _drain(reports) -> list[ActorReport]:
    drained = []
    while reports:
        drained.append(reports.popleft())
    return drained


def with_process_env(runtime: RuntimeConfig, environ=None) -> RuntimeConfig:
    """`runtime` with the multi-host fields taken from the environment where set.

    JAXIMPALA_COORDINATOR_ADDRESS, JAXIMPALA_NUM_PROCESSES and JAXIMPALA_PROCESS_ID win;
    under Slurm, SLURM_NTASKS and SLURM_PROCID give the process count and id.
    """
    environ = os.environ if environ is None else environ
    fields = {}
    for field, names in (("coordinator_address", ("JAXIMPALA_COORDINATOR_ADDRESS",)),
                         ("num_processes", ("JAXIMPALA_NUM_PROCESSES", "SLURM_NTASKS")),
                         ("process_id", ("JAXIMPALA_PROCESS_ID", "SLURM_PROCID"))):
        value = next((environ[n] for n in names if environ.get(n)), None)
        if value is not None:
            fields[field] = value if field == "coordinator_address" else int(value)
    return dataclasses.replace(runtime, **fields) if fields else runtime


def join_distributed(runtime: RuntimeConfig) -> None:
    """Joins `jax.distributed` for a multi-host run (before any JAX computation).

    CPU collectives go through gloo, so the same code runs on CPU-only hosts and tests.
    Actors never join: only learner processes are in the group. A process silent for
    `peer_timeout_s` (killed, frozen, its host gone) makes jax.distributed end every process
    of the group, whose actors then die with their parent (no orphans).
    """
    if runtime.num_processes == 1 or jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # JAX's preemption service installs its own SIGTERM handler, which replaces ours: a
    # SIGTERM (Slurm's scancel, a preemption) would be swallowed, with no stop and no final
    # checkpoint. Stops are agreed through `_any_process_stopping` instead.
    jax.config.update("jax_enable_preemption_service", False)
    jax.distributed.initialize(runtime.coordinator_address, runtime.num_processes,
                               runtime.process_id,
                               heartbeat_timeout_seconds=runtime.peer_timeout_s)


def _any_process_stopping(stopping: bool, runtime: RuntimeConfig) -> bool:
    """Whether any learner process wants to stop (all must leave the loop together, or
    the others would wait forever in the next update's collectives)."""
    if runtime.num_processes == 1:
        return stopping
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.array([stopping], np.int32))
    return bool(np.asarray(flags).any())


def train_distributed(env: EnvConfig, algo: AlgoConfig, runtime: RuntimeConfig, *,
                      total_env_steps: int, seed: int, network: NetworkConfig | None = None,
                      learner: Learner | None = None,
                      on_update: Callable[[dict], None] | None = None,
                      stop: threading.Event | None = None) -> InlineResult:
    """Trains with `runtime.num_actors` actor processes for `total_env_steps`.

    Same contract as `train_inline`: each update consumes `algo.batch_size` columns
    (`batch_size / env.num_envs` unrolls, from any actors); `on_update` gets the update's
    metrics with the inline keys plus the pipeline's (`queue_depth`, `data_wait_seconds`,
    `policy_lag_mean/max`, `dropped_stale`, `rejected_<reason>`, `actor_restarts`,
    `bytes_received_per_s`, ...); a given `learner` is trained instead of a fresh one;
    setting `stop` ends the run after the update in progress, with every actor stopped,
    and returns `stopped=True`.
    """
    import jaximpala.envs  # noqa: F401  (registers the driving ids)

    if algo.batch_size % env.num_envs:
        raise ValueError(f"algo.batch_size={algo.batch_size} must be a multiple of "
                         f"env.num_envs={env.num_envs}")
    runtime = with_process_env(runtime)
    join_distributed(runtime)
    learner_key, _ = jax.random.split(jax.random.key(seed))
    probe = make_vector_env(env.id, 1, env.kwargs)
    agent = make_agent(probe.single_observation_space, probe.single_action_space, network)
    probe.close()
    updates = num_updates(algo, total_env_steps)
    if learner is None:
        learner = Learner(agent, algo, num_updates=updates, key=learner_key)
    codec = TrajectoryCodec(example_trajectory(env, algo, agent, learner.params, seed))
    stop = stop or threading.Event()
    with contextlib.ExitStack() as cleanup:
        sockets = LearnerSockets(runtime, codec)
        cleanup.callback(sockets.close)
        sockets.publish(learner.version, learner.params)

        supervisor = make_supervisor(
            actor_specs(env, algo, network, seed, sockets, runtime), runtime)
        receiver = Receiver(codec, sockets.trajectories, sockets.reports,
                            queue_size=queue_capacity(runtime, algo, env.num_envs),
                            on_report=lambda r: supervisor.heard_from(
                                r.actor_id - runtime.process_id * runtime.num_actors,
                                r.incarnation))
        batcher = Batcher(receiver.trajectories, batch_size=algo.batch_size,
                          num_envs=env.num_envs, devices=learner.devices,
                          prefetch_depth=runtime.prefetch_depth,
                          learner_version=lambda: learner.version,
                          max_policy_lag=runtime.max_policy_lag)
        for worker in (receiver, batcher):
            worker.start()
            cleanup.callback(worker.join)
            cleanup.callback(worker.stop)
        supervisor.start()
        cleanup.callback(supervisor.stop)
        history, episodes = _loop(learner, algo, runtime, updates, sockets, supervisor,
                                  receiver, batcher, stop, on_update)
    done = learner.version
    return InlineResult(episodes, history, done * frames_per_update(algo), learner,
                        stopped=done < updates)


def _loop(learner: Learner, algo: AlgoConfig, runtime: RuntimeConfig, updates: int,
          sockets: LearnerSockets,
          supervisor: Supervisor, receiver: Receiver, batcher: Batcher,
          stop: threading.Event, on_update) -> tuple[list[dict], list[dict]]:
    history, episodes = [], []
    last_tick, last_bytes = time.perf_counter(), 0
    for update in range(learner.version, updates):
        tick = time.perf_counter()
        batch = _wait_for_batch(batcher, stop, (receiver, batcher, supervisor))
        if _any_process_stopping(batch is None, runtime):
            break
        data_wait = time.perf_counter() - tick
        lag = learner.version - batch.policy_versions
        tick = time.perf_counter()
        metrics = learner.update_sharded(batch.device_batch)
        update_seconds = time.perf_counter() - tick
        sockets.publish(learner.version, learner.params)
        now = time.perf_counter()
        reports = _drain(receiver.reports)
        report_metrics = _report_metrics(reports, now - last_tick)
        episodes += [e for r in reports for e in r.episodes]
        metrics.update(report_metrics)
        metrics.update({
            "update": update + 1,
            "env_steps": (update + 1) * frames_per_update(algo),
            "update_seconds": update_seconds,
            "data_wait_seconds": data_wait,
            "batch_prepare_seconds": batch.prepare_seconds,
            "queue_depth": receiver.trajectories.qsize(),
            "prefetched_batches": batcher.batches.qsize(),
            "policy_lag_mean": float(lag.mean()),
            "policy_lag_max": int(lag.max()),
            "dropped_stale": batcher.dropped_stale,
            "actor_restarts": supervisor.restarts,
            "actors_seen": len(receiver.actor_ids),
            "trajectory_disconnects": receiver.disconnects,
            "bytes_received_per_s": (receiver.bytes_received - last_bytes) / (now - last_tick),
            **{f"rejected_{k}": v for k, v in receiver.rejections.snapshot().items()},
        })
        last_tick, last_bytes = now, receiver.bytes_received
        history.append(metrics)
        if on_update is not None:
            on_update(metrics)
    return history, episodes
