"""The ZeroMQ sockets of a run, configured in one place.

- Trajectories: actor PUSH -> learner PULL with small high-water marks, so a slow learner
  slows the actors (backpressure) and memory stays bounded on both sides.
- Reports: actor PUSH -> its own learner's PULL, one small frame per unroll.
- Params: learner PUB -> actor SUB with CONFLATE (an actor only ever sees the latest), plus
  a REP socket answering "current params" so a new actor does not wait for the next PUB.

Every socket has a bounded LINGER, TCP keepalive and send/receive timeouts. ZMTP
heartbeats (ZMQ_HEARTBEAT_*) are on for the params sockets only: libzmq 4.3 aborts the
process when a heartbeat times out on a connection whose input is stalled by a full pipe
(https://github.com/zeromq/libzmq/issues/3937, #4767), which is exactly what backpressure
does to the trajectory pipes. Liveness of actors is checked one level up instead: they
report every unroll and send heartbeat reports while blocked (see `runtime.Supervisor`).
Sockets that receive from the network bound the message size
(`maxmsgsize`). With `curve` set, every socket speaks CurveZMQ: servers (the learner) accept
only client public keys in the allow-list directory (see `jaximpala keys`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from jaximpala.transport.codec import RejectedMessage
from jaximpala.transport.params import decode_params, encode_params

LOG = logging.getLogger(__name__)

LINGER_MS = 1000
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 5000
TIMEOUT_MS = 1000
KEEPALIVE_IDLE_S = 10
KEEPALIVE_INTERVAL_S = 5
TRAJECTORY_HWM = 2  # messages per peer queued on each side of a trajectory pipe
# Kernel buffers of a trajectory connection: without a bound, loopback TCP autotunes to
# several MB per side, which holds hundreds of small trajectories in flight (stale data, a
# large policy lag) and hides backpressure from the producer. So a buffer is sized to one
# message. A message bigger than the largest buffer a socket may set (rmem_max/wmem_max,
# commonly 4 MiB) cannot get one: capping its buffers below a message cost a quarter to a
# half of the loopback throughput of 11 MB driving trajectories (two actors into one
# learner, 2-core box: 1.8-3.0 GB/s capped, 3.7-4.0 GB/s autotuned), so such sockets keep
# the kernel's autotuning, whose tcp_rmem/tcp_wmem maxima bound them to a few messages in
# flight.
TRAJECTORY_SOCKET_BUFFER = 4 * 1024 * 1024
MIN_SOCKET_BUFFER = 4096


def trajectory_socket_buffer(message_bytes: int) -> int | None:
    """Kernel buffer for a trajectory socket: one message, at least 4 KiB, so what is in
    flight is bounded in messages (hence policy lag), not only in bytes; None (the kernel's
    autotuning) for a message over 4 MiB, which no settable buffer holds."""
    if message_bytes > TRAJECTORY_SOCKET_BUFFER:
        return None
    return int(max(MIN_SOCKET_BUFFER, message_bytes))


REPORT_HWM = 16
MAX_REQUEST_BYTES = 64


# --- CurveZMQ ----------------------------------------------------------------------------

SERVER_KEY = "server"
CLIENT_KEY = "client"
ALLOWED_DIR = "allowed_clients"


def generate_keys(directory: str | Path) -> dict[str, Path]:
    """Creates a server and a client key pair in `directory` and allows that client.

    Layout: `server.key(_secret)`, `client.key(_secret)`, and `allowed_clients/` holding
    the public keys the learner accepts (copy more client `.key` files there to allow them).
    """
    directory = Path(directory)
    allowed = directory / ALLOWED_DIR
    allowed.mkdir(parents=True, exist_ok=True)
    public, secret = {}, {}
    for name in (SERVER_KEY, CLIENT_KEY):
        public[name], secret[name] = map(Path, zmq.auth.create_certificates(directory, name))
        secret[name].chmod(0o600)
    (allowed / public[CLIENT_KEY].name).write_bytes(public[CLIENT_KEY].read_bytes())
    return {"server_public": public[SERVER_KEY], "server_secret": secret[SERVER_KEY],
            "client_public": public[CLIENT_KEY], "client_secret": secret[CLIENT_KEY],
            "allowed": allowed}


@dataclasses.dataclass(frozen=True)
class Curve:
    """CurveZMQ keys of one side. `server_public` is None on the server side."""

    public: bytes
    secret: bytes
    server_public: bytes | None
    allowed_dir: str | None = None  # servers: directory of allowed client public keys

    @classmethod
    def server(cls, keys_dir: str | Path) -> Curve:
        keys_dir = Path(keys_dir)
        public, secret = zmq.auth.load_certificate(keys_dir / f"{SERVER_KEY}.key_secret")
        return cls(public, secret, None, str(keys_dir / ALLOWED_DIR))

    @classmethod
    def client(cls, keys_dir: str | Path) -> Curve:
        keys_dir = Path(keys_dir)
        public, secret = zmq.auth.load_certificate(keys_dir / f"{CLIENT_KEY}.key_secret")
        server_public, _ = zmq.auth.load_certificate(keys_dir / f"{SERVER_KEY}.key")
        return cls(public, secret, server_public)


def start_authenticator(context: zmq.Context, curve: Curve | None) -> ThreadAuthenticator | None:
    """The ZAP handler that enforces the client allow-list (servers with curve only)."""
    if curve is None or curve.server_public is not None:
        return None
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=curve.allowed_dir)
    return auth


# --- sockets -----------------------------------------------------------------------------

def make_socket(context: zmq.Context, kind: int, *, curve: Curve | None = None,
                hwm: int | None = None, max_message_bytes: int | None = None,
                conflate: bool = False, heartbeat: bool = False,
                kernel_buffer: int | None = None, timeout_ms: int = TIMEOUT_MS) -> zmq.Socket:
    """A socket with bounded linger, keepalive and timeouts (options set before connect).

    `heartbeat`: ZMTP heartbeats; only for sockets whose input never stalls (see above).
    """
    sock = context.socket(kind)
    sock.linger = LINGER_MS
    sock.tcp_keepalive = 1
    sock.tcp_keepalive_idle = KEEPALIVE_IDLE_S
    sock.tcp_keepalive_intvl = KEEPALIVE_INTERVAL_S
    if heartbeat:
        sock.heartbeat_ivl = HEARTBEAT_IVL_MS
        sock.heartbeat_timeout = HEARTBEAT_TIMEOUT_MS
        sock.heartbeat_ttl = HEARTBEAT_TIMEOUT_MS
    sock.rcvtimeo = sock.sndtimeo = timeout_ms
    if hwm is not None:
        sock.sndhwm = sock.rcvhwm = hwm
    if kernel_buffer is not None:
        sock.sndbuf = sock.rcvbuf = kernel_buffer
    if max_message_bytes is not None:
        sock.maxmsgsize = max_message_bytes
    if conflate:
        sock.conflate = 1
    if curve is not None:
        sock.curve_secretkey = curve.secret
        sock.curve_publickey = curve.public
        if curve.server_public is None:
            sock.curve_server = True
        else:
            sock.curve_serverkey = curve.server_public
    return sock


def bind(sock: zmq.Socket, host: str, port: int) -> str:
    """Binds `sock` to `host:port` (port 0: a free port) and returns the endpoint."""
    if port == 0:
        port = sock.bind_to_random_port(f"tcp://{host}")
    else:
        sock.bind(f"tcp://{host}:{port}")
    return f"tcp://{host}:{port}"


def send_until(sock: zmq.Socket, frames: list, should_stop: Callable[[], bool],
               on_timeout: Callable[[], None] | None = None) -> bool:
    """Sends a multipart message zero-copy, retrying on timeouts until `should_stop()`.

    Returns whether it was sent. Blocking here is the backpressure of a full pipe;
    `on_timeout` runs after each send timeout (e.g. to send a heartbeat).
    """
    while not should_stop():
        try:
            sock.send_multipart(frames, copy=False)
            return True
        except zmq.Again:
            if on_timeout is not None:
                on_timeout()
    return False


# --- params ------------------------------------------------------------------------------

class ParamsServer:
    """The learner's side of params: PUB every new version, REP the current one.

    The REP socket lives in its own thread (ZeroMQ sockets are not thread-safe); it answers
    any request of at most `MAX_REQUEST_BYTES` with the latest frame.
    """

    def __init__(self, context: zmq.Context, host: str, *, pub_port: int = 0,
                 rep_port: int = 0, curve: Curve | None = None):
        self._pub = make_socket(context, zmq.PUB, curve=curve, conflate=True, heartbeat=True)
        self._rep = make_socket(context, zmq.REP, curve=curve, heartbeat=True,
                                max_message_bytes=MAX_REQUEST_BYTES, timeout_ms=100)
        self.pub_endpoint = bind(self._pub, host, pub_port)
        self.rep_endpoint = bind(self._rep, host, rep_port)
        self._latest: bytes | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="params-rep", daemon=True)
        self._thread.start()

    def publish(self, version: int, params: Any) -> int:
        """Publishes `params` as `version`; returns the frame's size in bytes."""
        frame = encode_params(version, params)
        with self._lock:
            self._latest = frame
        try:
            self._pub.send(frame, flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # PUB never blocks; a subscriber that missed it will get the next one
        return len(frame)

    def _serve(self):
        while not self._closing.is_set():
            try:
                self._rep.recv()
            except zmq.Again:
                continue
            with self._lock:
                frame = self._latest
            self._rep.send(frame if frame is not None else b"")

    def close(self):
        self._closing.set()
        self._thread.join()
        self._pub.close(linger=0)
        self._rep.close(linger=0)


class ParamsClient:
    """The actor's side of params: ask for the current version, then follow the PUB.

    Frames that do not restore into `template` (another tree, shape or dtype) are counted
    in `rejected` and ignored.
    """

    def __init__(self, context: zmq.Context, pub_endpoint: str, rep_endpoint: str,
                 template: Any, *, curve: Curve | None = None):
        self._context, self._curve = context, curve
        self._rep_endpoint = rep_endpoint
        self._template = template
        self._sub = make_socket(context, zmq.SUB, curve=curve, conflate=True, heartbeat=True,
                                timeout_ms=0)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        self._sub.connect(pub_endpoint)
        self.rejected = 0

    def _decode(self, frame) -> tuple[int, Any] | None:
        try:
            return decode_params(frame, self._template)
        except RejectedMessage as error:
            self.rejected += 1
            LOG.warning("ignoring a params frame: %s", error)
            return None

    def request(self, should_stop: Callable[[], bool], timeout_ms: int = 2000
                ) -> tuple[int, Any] | None:
        """The learner's current `(version, params)`, asking again after each timeout
        (a REQ socket that timed out is replaced) until answered or `should_stop()`."""
        while not should_stop():
            req = make_socket(self._context, zmq.REQ, curve=self._curve, heartbeat=True,
                              timeout_ms=timeout_ms)
            req.connect(self._rep_endpoint)
            try:
                req.send(b"params")
                frame = req.recv()
            except zmq.Again:
                continue
            finally:
                req.close(linger=0)
            if frame and (answer := self._decode(frame)) is not None:
                return answer
            time.sleep(0.1)  # the learner has not published yet
        return None

    def latest(self) -> tuple[int, Any] | None:
        """The newest published `(version, params)` since the last call, never blocking."""
        try:
            frame = self._sub.recv(flags=zmq.NOBLOCK)
        except zmq.Again:
            return None
        return self._decode(frame)

    def close(self):
        self._sub.close(linger=0)
