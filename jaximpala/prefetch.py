"""The learner's intake: receive and validate trajectories, batch them, put them on devices.

Two threads, joined by bounded queues, so the update never waits when actors keep up:

- `Receiver` polls the trajectory and report PULL sockets, decodes every message against
  the run's `TrajectoryCodec`, counts rejections by reason (logging each reason at most once
  a minute) and puts whole trajectories on a queue of at most `queue_size`. When that queue
  is full it stops reading the trajectory socket: the socket's high-water mark fills and the
  actors' sends block (backpressure), so memory stays bounded. It also watches the
  trajectory socket's connections: libzmq drops a connection whose frame exceeds the
  socket's `maxmsgsize` before any byte reaches the codec, so such a message can only be
  counted as a dropped connection (`disconnects`, logged once a minute), like a dead actor.
- `Batcher` takes `B / N` trajectories, drops those older than `max_policy_lag` updates,
  concatenates them to a `[T, B]` batch, shards it over the local devices and `device_put`s
  it, keeping up to `prefetch_depth` batches ready ahead of the update.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np
import zmq
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from zmq.utils.monitor import recv_monitor_message

from jaximpala.learner import AXIS
from jaximpala.trajectory import Trajectory, concatenate_batch, shard_batch
from jaximpala.transport.codec import RejectedMessage
from jaximpala.transport.reports import ActorReport, decode_report
from jaximpala.transport.trajectories import TrajectoryCodec

LOG = logging.getLogger(__name__)
POLL_MS = 100


class RejectionCounter:
    """Counts events by reason; logs each reason at most once per `interval_s`.

    `add` counts a rejected message; `count` any other event (`what` names it in the log).
    """

    def __init__(self, interval_s: float = 60.0, what: str = "rejected a message"):
        self.counts: collections.Counter[str] = collections.Counter()
        self._interval_s = interval_s
        self._what = what
        self._last_logged: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, error: RejectedMessage) -> None:
        self.count(error.reason, str(error))

    def count(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.counts[reason] += 1
            if now - self._last_logged.get(reason, -np.inf) >= self._interval_s:
                self._last_logged[reason] = now
                LOG.warning("%s (%s so far for this reason): %s", self._what,
                            self.counts[reason], detail)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


class Received(NamedTuple):
    """One validated trajectory `[T(+1), N, ...]` and its header fields."""

    trajectory: Trajectory
    meta: dict[str, int]
    nbytes: int


class Receiver(threading.Thread):
    """Decodes trajectories into `trajectories` (bounded) and reports into `reports`."""

    def __init__(self, codec: TrajectoryCodec, trajectory_socket: zmq.Socket,
                 report_socket: zmq.Socket, *, queue_size: int,
                 on_report: Callable[[ActorReport], None] | None = None):
        super().__init__(name="trajectory-receiver", daemon=True)
        self.codec = codec
        self.trajectories: queue.Queue[Received] = queue.Queue(maxsize=queue_size)
        self.reports: collections.deque[ActorReport] = collections.deque(maxlen=100_000)
        self.rejections = RejectionCounter()
        self.bytes_received = 0
        self.received = 0
        self.actor_ids: set[int] = set()  # every actor a trajectory came from
        # Trajectory connections dropped: a dead actor or a frame over maxmsgsize.
        self.dropped_connections = RejectionCounter(what="a trajectory connection dropped")
        self._sockets = (trajectory_socket, report_socket)
        self._on_report = on_report
        self._stop_event = threading.Event()
        self.error: BaseException | None = None

    def stop(self):
        self._stop_event.set()

    def run(self):
        monitor = self._sockets[0].get_monitor_socket(zmq.EVENT_DISCONNECTED)
        try:
            self._run(monitor)
        except BaseException as error:  # surfaced to the training loop, never swallowed
            self.error = error
            raise
        finally:
            self._sockets[0].disable_monitor()
            monitor.close(linger=0)

    def _run(self, monitor: zmq.Socket):
        trajectory_socket, report_socket = self._sockets
        poller = zmq.Poller()
        poller.register(report_socket, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        reading_trajectories = False
        while not self._stop_event.is_set():
            # Only read trajectories when there is room: otherwise the socket fills up and
            # the actors block, which is the backpressure that bounds memory.
            room = not self.trajectories.full()
            if room != reading_trajectories:
                if room:
                    poller.register(trajectory_socket, zmq.POLLIN)
                else:
                    poller.unregister(trajectory_socket)
                reading_trajectories = room
            ready = dict(poller.poll(POLL_MS))
            if trajectory_socket in ready:
                self._receive_trajectory(trajectory_socket)
            if report_socket in ready:
                self._receive_report(report_socket)
            if monitor in ready:
                self._count_disconnect(monitor)

    def _receive_trajectory(self, sock: zmq.Socket):
        frames = sock.recv_multipart(copy=False)
        nbytes = sum(len(f) for f in frames)
        self.bytes_received += nbytes
        try:
            trajectory, meta = self.codec.decode(frames)
        except RejectedMessage as error:
            self.rejections.add(error)
            return
        self.received += 1
        self.actor_ids.add(meta["actor_id"])
        self.trajectories.put_nowait(Received(trajectory, meta, nbytes))

    @property
    def disconnects(self) -> int:
        return self.dropped_connections.snapshot().get("disconnected", 0)

    def _count_disconnect(self, monitor: zmq.Socket):
        if recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
            self.dropped_connections.count(
                "disconnected", f"an actor died, or sent a frame over maxmsgsize="
                f"{self._sockets[0].maxmsgsize} bytes, which libzmq discards unread")

    def _receive_report(self, sock: zmq.Socket):
        frames = sock.recv_multipart(copy=False)
        try:
            if len(frames) != 1:
                raise RejectedMessage("report_malformed", f"{len(frames)} frames")
            report = decode_report(frames[0])
        except RejectedMessage as error:
            self.rejections.add(error)
            return
        self.reports.append(report)
        if self._on_report is not None:
            self._on_report(report)


def pmap_sharding(devices: list) -> NamedSharding:
    """The sharding of a pmapped function's inputs: leading axis split over `devices`."""
    return NamedSharding(Mesh(np.array(devices), (AXIS,)), PartitionSpec(AXIS))


class Batch(NamedTuple):
    """A batch ready for `Learner.update_sharded`.

    device_batch: the trajectory sharded `[D, T, B / D, ...]` on the learner's devices.
    policy_versions: `[B]` host copy of the acting versions (for policy-lag metrics).
    prepare_seconds: time spent concatenating, sharding and transferring it.
    """

    device_batch: Trajectory
    policy_versions: np.ndarray
    prepare_seconds: float


class Batcher(threading.Thread):
    """Stacks `batch_size / N` received trajectories into sharded device batches.

    Args:
      source: the receiver's queue of validated trajectories.
      batch_size: B, columns per batch (a multiple of each trajectory's N columns).
      devices: the learner's local devices.
      prefetch_depth: batches kept ready on the devices ahead of the update.
      learner_version: the learner's current version (for `max_policy_lag`).
      max_policy_lag: drop trajectories acted on by params older than this (None: keep).
    """

    def __init__(self, source: queue.Queue, *, batch_size: int, num_envs: int, devices: list,
                 prefetch_depth: int, learner_version: Callable[[], int],
                 max_policy_lag: int | None = None):
        super().__init__(name="batcher", daemon=True)
        if batch_size % num_envs:
            raise ValueError(f"batch_size={batch_size} must be a multiple of the "
                             f"{num_envs} envs per actor")
        self.batches: queue.Queue[Batch] = queue.Queue(maxsize=prefetch_depth)
        self.dropped_stale = 0
        self.error: BaseException | None = None
        self._source = source
        self._per_batch = batch_size // num_envs
        self._devices = list(devices)
        self._sharding = pmap_sharding(self._devices)
        self._learner_version = learner_version
        self._max_policy_lag = max_policy_lag
        self._stop_event = threading.Event()

    def stop(self):
        self._stop_event.set()

    def run(self):
        try:
            while not self._stop_event.is_set():
                batch = self._next_batch()
                if batch is not None:
                    self._put(batch)
        except BaseException as error:  # surfaced to the training loop, never swallowed
            self.error = error
            raise

    def _get(self) -> Received | None:
        while not self._stop_event.is_set():
            try:
                return self._source.get(timeout=POLL_MS / 1000)
            except queue.Empty:
                continue
        return None

    def _too_stale(self, received: Received) -> bool:
        if self._max_policy_lag is None:
            return False
        lag = self._learner_version() - received.meta["policy_version"]
        return lag > self._max_policy_lag

    def _next_batch(self) -> Batch | None:
        parts = []
        while len(parts) < self._per_batch:
            received = self._get()
            if received is None:
                return None
            if self._too_stale(received):
                self.dropped_stale += 1
                continue
            parts.append(received.trajectory)
        tick = time.perf_counter()
        host = concatenate_batch(parts)
        sharded = shard_batch(host, len(self._devices))
        device_batch = jax.device_put(sharded, self._sharding)
        jax.block_until_ready(device_batch)
        return Batch(device_batch, np.asarray(host.policy_versions),
                     time.perf_counter() - tick)

    def _put(self, batch: Batch):
        while not self._stop_event.is_set():
            try:
                self.batches.put(batch, timeout=POLL_MS / 1000)
                return
            except queue.Full:
                continue
