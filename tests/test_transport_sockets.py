import time

import numpy as np
import pytest
import zmq

from jaximpala.transport.sockets import (
    Curve,
    ParamsClient,
    ParamsServer,
    bind,
    generate_keys,
    make_socket,
    send_until,
    start_authenticator,
    trajectory_socket_buffer,
)

TEMPLATE = {"w": np.zeros((3, 2), np.float32), "b": np.zeros(2, np.float32)}


def _params(value):
    return {"w": np.full((3, 2), value, np.float32), "b": np.full(2, value, np.float32)}


@pytest.fixture
def context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def _client(context, server, template=TEMPLATE, curve=None):
    return ParamsClient(context, server.pub_endpoint, server.rep_endpoint, template,
                        curve=curve)


def test_a_new_actor_gets_the_current_params_then_only_the_latest(context):
    server = ParamsServer(context, "127.0.0.1")
    client = _client(context, server)
    try:
        server.publish(3, _params(3.0))
        version, params = client.request(lambda: False)
        assert version == 3
        np.testing.assert_array_equal(params["w"], _params(3.0)["w"])
        # The SUB is connected once the REQ round trip is done; CONFLATE keeps the newest.
        time.sleep(0.3)
        for v in range(4, 9):
            server.publish(v, _params(float(v)))
        time.sleep(0.3)
        version, params = client.latest()
        assert version == 8
        np.testing.assert_array_equal(params["b"], _params(8.0)["b"])
        assert client.latest() is None
    finally:
        client.close()
        server.close()


def test_params_of_another_shape_are_rejected_not_applied(context):
    server = ParamsServer(context, "127.0.0.1")
    other = {"w": np.zeros((2, 2), np.float32), "b": np.zeros(2, np.float32)}
    client = _client(context, server, template=other)
    try:
        server.publish(1, _params(1.0))
        attempts = []
        answer = client.request(lambda: len(attempts) > 0 or attempts.append(1),
                                timeout_ms=500)
        assert answer is None
        assert client.rejected == 1
    finally:
        client.close()
        server.close()


def test_request_gives_up_when_told_to_stop(context):
    client = ParamsClient(context, "tcp://127.0.0.1:1", "tcp://127.0.0.1:1", TEMPLATE)
    calls = []
    assert client.request(lambda: len(calls) > 2 or calls.append(1), timeout_ms=50) is None
    client.close()


def test_curve_allows_listed_clients_only(context, tmp_path):
    keys = generate_keys(tmp_path / "keys")
    stranger = generate_keys(tmp_path / "stranger")  # a valid pair, not in the allow-list
    server_curve = Curve.server(tmp_path / "keys")
    auth = start_authenticator(context, server_curve)
    pull = make_socket(context, zmq.PULL, curve=server_curve, timeout_ms=1500)
    endpoint = bind(pull, "127.0.0.1", 0)
    try:
        allowed = make_socket(context, zmq.PUSH, curve=Curve.client(tmp_path / "keys"))
        allowed.connect(endpoint)
        assert send_until(allowed, [b"hello"], lambda: False)
        assert pull.recv() == b"hello"
        # A client whose key is not allowed is refused during the handshake: nothing it
        # sends ever arrives.
        other = Curve(*zmq.auth.load_certificate(stranger["client_secret"]),
                      server_public=server_curve.public)
        refused = make_socket(context, zmq.PUSH, curve=other, timeout_ms=200)
        refused.connect(endpoint)
        try:
            refused.send(b"intruder")
        except zmq.Again:
            pass
        with pytest.raises(zmq.Again):
            pull.recv()
        assert keys["server_secret"].stat().st_mode & 0o777 == 0o600
    finally:
        auth.stop()


def test_trajectory_buffers_hold_one_message_or_autotune_past_what_a_socket_may_set(context):
    # One message in flight bounds policy lag; past 4 MiB (the usual rmem_max) no settable
    # buffer holds one, and a smaller one throttles the stream, so the kernel autotunes.
    assert trajectory_socket_buffer(100) == 4096
    assert trajectory_socket_buffer(300_000) == 300_000
    assert trajectory_socket_buffer(4 * 1024 * 1024) == 4 * 1024 * 1024
    assert trajectory_socket_buffer(4 * 1024 * 1024 + 1) is None
    default = context.socket(zmq.PUSH)
    autotuned = make_socket(context, zmq.PUSH, kernel_buffer=None)
    sized = make_socket(context, zmq.PUSH, kernel_buffer=300_000)
    assert autotuned.sndbuf == autotuned.rcvbuf == default.sndbuf
    assert sized.sndbuf == sized.rcvbuf == 300_000
    for sock in (default, autotuned, sized):
        sock.close(linger=0)
