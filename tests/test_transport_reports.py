import msgpack
import pytest

from jaximpala.transport.codec import RejectedMessage
from jaximpala.transport.reports import ActorReport, decode_report, encode_report

REPORT = ActorReport(actor_id=1, incarnation=0, sequence=5, policy_version=3, env_steps=64,
                     env_seconds=0.5, inference_seconds=0.25, wall_seconds=0.8,
                     max_rss_bytes=10**8,
                     episodes=[{"episode_return": 12.5, "episode_length": 20,
                                "episode/collision": 1.0}])


def test_round_trip():
    assert decode_report(encode_report(REPORT)) == REPORT


@pytest.mark.parametrize("frame", [
    b"\xc1garbage",
    msgpack.packb([1, 2, 3]),
    msgpack.packb({**REPORT._asdict(), "extra": 1}),
    msgpack.packb({**REPORT._asdict(), "actor_id": "1"}),
    msgpack.packb({**REPORT._asdict(), "env_seconds": None}),
    msgpack.packb({**REPORT._asdict(), "episodes": {"episode_return": 1.0}}),
    msgpack.packb({**REPORT._asdict(), "episodes": [{"episode_return": "x"}]}),
    msgpack.packb({**REPORT._asdict(), "episodes": [{1: 1.0}]}, strict_types=False),
])
def test_malformed_reports_are_rejected(frame):
    with pytest.raises(RejectedMessage) as info:
        decode_report(frame)
    assert info.value.reason == "report_malformed"
