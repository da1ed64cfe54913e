"""The supervisor's restart rules, with real spawned processes that crash or hang."""

import time

import psutil
import pytest

from jaximpala.runtime import ActorCrashLoop, Supervisor
from tests.supervisor_targets import crash, hang


def _supervisor(target, **kwargs):
    options = dict(timeout_s=60.0, start_timeout_s=60.0, backoff_s=0.05, max_backoff_s=0.2,
                   max_failed_starts=100)
    return Supervisor(lambda actor_id, incarnation: (actor_id, incarnation), 1,
                      target=target, **{**options, **kwargs})


def _wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_actor_that_keeps_dying_before_reporting_stops_the_run():
    supervisor = _supervisor(crash, max_failed_starts=3)
    supervisor.start()
    try:
        _wait_for(lambda: supervisor.error is not None, 60)
    finally:
        supervisor.stop()
    assert isinstance(supervisor.error, ActorCrashLoop)
    assert "exited with code 3" in str(supervisor.error)
    assert supervisor.restarts == 2


def test_a_silent_actor_is_killed_and_replaced_and_stop_reaps_everything():
    supervisor = _supervisor(hang, start_timeout_s=1.0)
    supervisor.start()
    try:
        _wait_for(lambda: supervisor.pids(), 30)
        first = supervisor.pids()[0]
        _wait_for(lambda: supervisor.pids() and supervisor.pids()[0] != first, 30)
        assert supervisor.restarts >= 1 and supervisor.error is None
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"
        current = supervisor.pids()[0]
    finally:
        start = time.monotonic()
        supervisor.stop()
    assert time.monotonic() - start < 10
    assert supervisor.pids() == {}
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(current).status()
