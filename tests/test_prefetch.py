import queue
import time

import jax
import numpy as np
import pytest
import zmq

from jaximpala.prefetch import Batcher, Received, Receiver, RejectionCounter
from jaximpala.transport.codec import RejectedMessage
from jaximpala.transport.reports import ActorReport, encode_report
from jaximpala.transport.sockets import bind, make_socket
from jaximpala.transport.trajectories import TrajectoryCodec
from tests.test_transport_trajectories import N, T, _trajectory

BUFFER = 64 * 1024


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def pipe():
    """A receiver on real loopback sockets, and PUSH sockets feeding it."""
    rng = np.random.default_rng(0)
    codec = TrajectoryCodec(_trajectory(rng))
    context = zmq.Context()
    pull = make_socket(context, zmq.PULL, hwm=1, kernel_buffer=BUFFER,
                       max_message_bytes=codec.spec.max_message_bytes)
    reports_pull = make_socket(context, zmq.PULL)
    endpoint, report_endpoint = bind(pull, "127.0.0.1", 0), bind(reports_pull, "127.0.0.1", 0)
    receiver = Receiver(codec, pull, reports_pull, queue_size=2)
    receiver.start()
    push = make_socket(context, zmq.PUSH, hwm=1, kernel_buffer=BUFFER, timeout_ms=200)
    push.connect(endpoint)
    report_push = make_socket(context, zmq.PUSH)
    report_push.connect(report_endpoint)
    yield codec, receiver, push, report_push, rng
    receiver.stop()
    receiver.join()
    for sock in (pull, reports_pull, push, report_push):
        sock.close(linger=0)
    context.term()


def _meta(version=4, sequence=0):
    return {"actor_id": 0, "incarnation": 0, "sequence": sequence, "policy_version": version}


def test_a_full_queue_stops_reading_and_the_sender_blocks(pipe):
    codec, receiver, push, _, rng = pipe
    sent = 0
    try:
        for sequence in range(10_000):
            push.send_multipart(codec.encode(_trajectory(rng), _meta(sequence=sequence)),
                                copy=False)
            sent += 1
    except zmq.Again:
        pass
    # What is in flight is bounded by the queue (2), the pipes' high-water marks and the
    # kernel buffers (Linux doubles the 64 KiB asked for, on each side).
    assert 2 <= sent < 10_000
    assert sent * codec.spec.payload_bytes < 2 * 4 * BUFFER + 8 * codec.spec.payload_bytes
    _wait_for(receiver.trajectories.full)
    assert receiver.received <= sent
    # Consuming makes room, and the receiver reads on in order.
    first = receiver.trajectories.get()
    assert first.meta["sequence"] == 0
    _wait_for(lambda: receiver.received >= 3)


def test_bad_messages_are_counted_by_reason_and_good_ones_pass(pipe):
    codec, receiver, push, report_push, rng = pipe
    good = _trajectory(rng)
    nan = good._replace(rewards=np.full((T, N), np.nan, np.float32))
    push.send_multipart([b"junk"])
    push.send_multipart(codec.encode(nan, _meta()))
    push.send_multipart(codec.encode(good, _meta()))
    report_push.send(b"\x92junk")
    report = ActorReport(0, 0, 0, 4, 8, 0.1, 0.1, 0.2, 1, [{"episode_return": 3.0}])
    report_push.send(encode_report(report))
    _wait_for(lambda: receiver.received == 1 and len(receiver.reports) == 1)
    assert receiver.rejections.snapshot() == {"frame_count": 1, "non_finite": 1,
                                              "report_malformed": 1}
    assert receiver.reports[0] == report
    received = receiver.trajectories.get_nowait()
    np.testing.assert_array_equal(received.trajectory.rewards, good.rewards)
    assert receiver.bytes_received > received.nbytes


def test_a_frame_over_maxmsgsize_is_counted_as_a_dropped_connection(pipe, caplog):
    # libzmq cuts such a frame off unread, so the codec never sees it: the receiver counts
    # the dropped connection instead, and the reconnected actor's next message still lands.
    codec, receiver, push, _, rng = pipe
    push.send(b"\0" * (codec.spec.max_message_bytes + 1))
    _wait_for(lambda: receiver.disconnects == 1)
    assert "maxmsgsize" in caplog.text
    push.send_multipart(codec.encode(_trajectory(rng), _meta()))
    _wait_for(lambda: receiver.received == 1)
    assert receiver.rejections.snapshot() == {}
    assert receiver.disconnects == 1


def test_rejections_are_logged_once_per_reason_per_interval(caplog):
    counter = RejectionCounter(interval_s=60.0)
    for _ in range(5):
        counter.add(RejectedMessage("oversized", "big"))
    counter.add(RejectedMessage("non_finite", "nan"))
    assert counter.snapshot() == {"oversized": 5, "non_finite": 1}
    assert len(caplog.records) == 2


def _received(rng, version):
    return Received(_trajectory(rng, version=version), _meta(version=version), 0)


def test_batcher_stacks_shards_and_drops_stale_data():
    rng = np.random.default_rng(1)
    source = queue.Queue()
    learner_version = 10
    batcher = Batcher(source, batch_size=2 * N, num_envs=N, devices=jax.local_devices(),
                      prefetch_depth=2, learner_version=lambda: learner_version,
                      max_policy_lag=3)
    parts = [_received(rng, v) for v in (9, 2, 7, 8)]  # version 2 is 8 updates stale
    for part in parts:
        source.put(part)
    batcher.start()
    try:
        batch = batcher.batches.get(timeout=30)
    finally:
        batcher.stop()
        batcher.join()
    assert batcher.dropped_stale == 1
    np.testing.assert_array_equal(batch.policy_versions, [9] * N + [7] * N)
    devices = jax.local_devices()
    rewards = batch.device_batch.rewards
    assert rewards.shape == (len(devices), T, 2 * N // len(devices))
    expected = np.concatenate([parts[0].trajectory.rewards, parts[2].trajectory.rewards], 1)
    np.testing.assert_array_equal(np.asarray(rewards).transpose(1, 0, 2).reshape(T, 2 * N),
                                  expected)
    assert {d for d in rewards.devices()} == set(devices)


def test_batch_size_must_be_a_multiple_of_the_actor_envs():
    with pytest.raises(ValueError, match="multiple"):
        Batcher(queue.Queue(), batch_size=N + 1, num_envs=N, devices=jax.local_devices(),
                prefetch_depth=1, learner_version=lambda: 0)
