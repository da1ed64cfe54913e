"""Actor reports: one small msgpack frame per unroll, for logging and liveness.

A report says what an actor did for one unroll (env and inference time, steps, the policy
version it acted with, the episodes it finished, its resident memory). The learner
validates every field's type before using it; a malformed report is rejected, not trusted.
"""

from __future__ import annotations

from typing import NamedTuple

import msgpack

from jaximpala.transport.codec import RejectedMessage

MAX_REPORT_BYTES = 1024 * 1024
MAX_EPISODES_PER_REPORT = 100_000


class ActorReport(NamedTuple):
    """What one actor did for one unroll.

    episodes: one dict per finished episode (`episode_return`, `episode_length`, and the
      `episode/<info key>` sums of `rollout.EpisodeTracker`).
    """

    actor_id: int
    incarnation: int
    sequence: int
    policy_version: int
    env_steps: int
    env_seconds: float
    inference_seconds: float
    wall_seconds: float
    max_rss_bytes: int
    episodes: list[dict[str, float]]


_INT_FIELDS = ("actor_id", "incarnation", "sequence", "policy_version", "env_steps",
               "max_rss_bytes")
_FLOAT_FIELDS = ("env_seconds", "inference_seconds", "wall_seconds")
_TYPES = {**{name: (int,) for name in _INT_FIELDS},
          **{name: (float, int) for name in _FLOAT_FIELDS}}


def encode_report(report: ActorReport) -> bytes:
    return msgpack.packb(report._asdict(), use_bin_type=True)


def _check_episodes(episodes) -> list[dict[str, float]]:
    if not isinstance(episodes, list) or len(episodes) > MAX_EPISODES_PER_REPORT:
        raise RejectedMessage("report_malformed", "episodes is not a bounded list")
    for episode in episodes:
        if not isinstance(episode, dict) or not all(
                isinstance(k, str) and type(v) in (int, float) for k, v in episode.items()):
            raise RejectedMessage("report_malformed", "an episode is not a dict of numbers")
    return episodes


def decode_report(frame) -> ActorReport:
    """The validated report in `frame`.

    Raises:
      RejectedMessage: reason ``report_malformed`` for anything but a well-formed report.
    """
    if memoryview(frame).nbytes > MAX_REPORT_BYTES:
        raise RejectedMessage("report_malformed", "report too large")
    try:
        fields = msgpack.unpackb(bytes(frame), raw=False, strict_map_key=True, max_bin_len=0,
                                 max_ext_len=0)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise RejectedMessage("report_malformed", type(error).__name__) from None
    if not isinstance(fields, dict) or set(fields) != set(ActorReport._fields):
        raise RejectedMessage("report_malformed", "wrong fields")
    for name, types in _TYPES.items():
        if type(fields[name]) not in types:
            raise RejectedMessage("report_malformed", f"{name} has type {type(fields[name])}")
    fields["episodes"] = _check_episodes(fields["episodes"])
    return ActorReport(**fields)
