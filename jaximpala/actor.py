"""The actor process: step a vector env with the latest params, stream unrolls to learners.

`run_actor(spec)` is the entry point of one spawned process. It builds its own vector env
(N envs), agent and CPU-jitted `act`, draws randomness from `fold_in(fold_in(actor_key,
actor_id), incarnation)`, asks the learner for the current params once, then loops:
take the newest published params if any (never waiting for them), collect an unroll of T
steps with `rollout.Collector`, push it to the learners (round-robin over every learner's
PULL endpoint; blocking only when every pipe is full, which is the learner's backpressure)
and push a report to its own learner.

JAX here is pinned to the CPU with one thread, so A actors on A cores do not oversubscribe
them; the flags are set before the backend starts, which is the first JAX computation.
"""

from __future__ import annotations

import ctypes
import dataclasses
import faulthandler
import os
import resource
import signal
import sys
import time

# One CPU thread for XLA and any BLAS: an actor is one core's worth of work.
_SINGLE_THREAD_ENV = {
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclasses.dataclass(frozen=True)
class ActorSpec:
    """Everything one actor process needs (picklable; sent to the spawned process).

    env_id, num_envs, env_kwargs: the vector env (see `inline.make_vector_env`).
    unroll_length, gamma: T and the discount.
    network: the agent's `NetworkConfig` (None: default).
    seed: the run's seed; the actor's key and env seed derive from it, `actor_id` and
      `incarnation` (a restarted actor does not replay its predecessor's randomness).
    trajectory_endpoints: every learner's trajectory PULL endpoint.
    report_endpoint: this actor's learner's report PULL endpoint.
    params_pub_endpoint, params_rep_endpoint: the params publisher (learner process 0).
    curve_keys_dir: CurveZMQ key directory (None: plaintext).
    parent_pid: the learner's pid; the actor exits when its parent is gone.
    """

    actor_id: int
    incarnation: int
    env_id: str
    num_envs: int
    env_kwargs: dict
    unroll_length: int
    gamma: float
    network: object
    seed: int
    trajectory_endpoints: tuple[str, ...]
    report_endpoint: str
    params_pub_endpoint: str
    params_rep_endpoint: str
    curve_keys_dir: str | None = None
    parent_pid: int = 0


class _Stopped(Exception):
    """SIGTERM arrived: leave the loop and close the sockets."""


def _on_sigterm(signum, frame):
    raise _Stopped


def _die_with_parent(parent_pid: int) -> None:
    """Asks Linux to SIGKILL this process when its parent dies (no orphan actors)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the parent-pid check in the loop still ends the actor
    if parent_pid and os.getppid() != parent_pid:
        print(f"actor: parent {parent_pid} is gone; exiting", file=sys.stderr)
        os._exit(0)


def actor_seeds(seed: int, actor_id: int, incarnation: int):
    """`(key, env_seed)` of one actor incarnation; the learner uses `split(key(seed))[0]`."""
    import jax
    import numpy as np

    _, actor_key = jax.random.split(jax.random.key(seed))
    key = jax.random.fold_in(jax.random.fold_in(actor_key, actor_id), incarnation)
    env_seed = int(np.random.SeedSequence([seed, actor_id, incarnation]).generate_state(1)[0])
    return key, env_seed


def run_actor(spec: ActorSpec) -> None:
    """Process entry point: runs until SIGTERM or until the parent process is gone."""
    os.environ.update(_SINGLE_THREAD_ENV)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the learner stops us in order
    signal.signal(signal.SIGTERM, _on_sigterm)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # as the learner (`cli.main`)
    _die_with_parent(spec.parent_pid)
    try:
        _Actor(spec).run()
    except _Stopped:
        pass
    print(f"actor {spec.actor_id} (incarnation {spec.incarnation}) stopped", file=sys.stderr)


def make_collector(spec: ActorSpec):
    """`(agent, collector, init_key)` of one actor incarnation: its vector env, agent and
    `Collector` seeded from `actor_seeds`; `init_key` (the key's other half) is for a params
    template. The actor's work without its sockets (the pipeline benchmark uses it too)."""
    import jax

    import jaximpala.envs  # noqa: F401  (registers the driving ids)
    from jaximpala.agent import make_agent
    from jaximpala.inline import make_vector_env
    from jaximpala.rollout import Collector

    key, env_seed = actor_seeds(spec.seed, spec.actor_id, spec.incarnation)
    env = make_vector_env(spec.env_id, spec.num_envs, spec.env_kwargs)
    agent = make_agent(env.single_observation_space, env.single_action_space, spec.network)
    init_key, key = jax.random.split(key)
    collector = Collector(env, agent, unroll_length=spec.unroll_length, gamma=spec.gamma,
                          key=key, seed=env_seed)
    return agent, collector, init_key


class _Actor:
    def __init__(self, spec: ActorSpec):
        import jax
        import zmq

        from jaximpala.transport.sockets import Curve, ParamsClient, make_socket

        self.spec = spec
        self.agent, self.collector, init_key = make_collector(spec)
        self.env = self.collector.env
        template = jax.device_get(self.agent.init(init_key))
        curve = Curve.client(spec.curve_keys_dir) if spec.curve_keys_dir else None
        self.context = zmq.Context()
        self.params = ParamsClient(self.context, spec.params_pub_endpoint,
                                   spec.params_rep_endpoint, template, curve=curve)
        self.curve = curve
        self.trajectories = None  # connected once the first unroll gives the message size
        self.reports = make_socket(self.context, zmq.PUSH, curve=curve, hwm=16)
        self.reports.connect(spec.report_endpoint)

    def _parent_gone(self) -> bool:
        return bool(self.spec.parent_pid) and os.getppid() != self.spec.parent_pid

    def run(self):
        try:
            self._loop()
        finally:
            self.params.close()
            if self.trajectories is not None:
                self.trajectories.close(linger=0)
            self.reports.close(linger=0)
            self.context.term()
            self.env.close()

    def _connect_trajectories(self, message_bytes: int):
        import zmq

        from jaximpala.transport.sockets import (
            TRAJECTORY_HWM,
            make_socket,
            trajectory_socket_buffer,
        )

        self.trajectories = make_socket(self.context, zmq.PUSH, curve=self.curve,
                                        hwm=TRAJECTORY_HWM,
                                        kernel_buffer=trajectory_socket_buffer(message_bytes))
        for endpoint in self.spec.trajectory_endpoints:
            self.trajectories.connect(endpoint)

    def _report(self, sequence: int, version: int, stats=None, seconds: float = 0.0):
        """Sends a report of an unroll's `stats`, or a heartbeat (no work) without them."""
        import zmq

        from jaximpala.transport.reports import ActorReport, encode_report

        report = ActorReport(
            actor_id=self.spec.actor_id, incarnation=self.spec.incarnation,
            sequence=sequence, policy_version=version,
            env_steps=stats.env_steps if stats else 0,
            env_seconds=stats.env_seconds if stats else 0.0,
            inference_seconds=stats.inference_seconds if stats else 0.0,
            wall_seconds=seconds,
            max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            episodes=stats.episodes if stats else [])
        try:
            self.reports.send(encode_report(report), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # the learner is not reading reports; they are advisory

    def _loop(self):
        import jax

        from jaximpala.transport.sockets import send_until
        from jaximpala.transport.trajectories import TrajectoryCodec

        answer = self.params.request(self._parent_gone)
        if answer is None:
            return
        version, params = answer[0], jax.device_put(answer[1])
        codec = None
        sequence = 0
        while not self._parent_gone():
            if (latest := self.params.latest()) is not None:
                version, params = latest[0], jax.device_put(latest[1])
            tick = time.perf_counter()
            trajectory, stats = self.collector.collect(params, version)
            if codec is None:
                codec = TrajectoryCodec(trajectory)
                self._connect_trajectories(codec.spec.payload_bytes)
            meta = {"actor_id": self.spec.actor_id, "incarnation": self.spec.incarnation,
                    "sequence": sequence, "policy_version": version}
            # While the learner applies backpressure, heartbeats say this actor is alive.
            heartbeat = lambda s=sequence, v=version: self._report(s, v)
            if not send_until(self.trajectories, codec.encode(trajectory, meta),
                              self._parent_gone, on_timeout=heartbeat):
                return
            self._report(sequence, version, stats, time.perf_counter() - tick)
            sequence += 1
