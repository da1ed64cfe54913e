import os
import pickle

import msgpack
import numpy as np
import pytest

from jaximpala.transport.codec import (
    MAX_HEADER_BYTES,
    MessageSpec,
    RejectedMessage,
    decode,
    encode,
)

META = {"policy_version": 7, "actor_id": 3, "incarnation": 1, "sequence": 42}


def _message(rng=None):
    rng = rng or np.random.default_rng(0)
    return {
        "observations/camera": rng.integers(0, 255, size=(5, 2, 8, 8, 3), dtype=np.uint8),
        "observations/state": rng.normal(size=(5, 2, 4)).astype(np.float32),
        "actions/discrete": rng.integers(0, 3, size=(4, 2, 2)).astype(np.int32),
        "rewards": rng.normal(size=(4, 2)).astype(np.float32),
        "mask": np.ones((4, 2), bool),
    }


def _spec(**kwargs):
    return MessageSpec.from_example(_message(), meta_fields=tuple(META), finite=("rewards",),
                                    **kwargs)


def _bytes_frames(frames):
    # What a socket delivers: independent byte strings.
    return [bytes(f) for f in frames]


def test_round_trip_is_exact_and_zero_copy():
    arrays = _message()
    frames = _bytes_frames(encode(arrays, META))
    decoded, meta = decode(frames, _spec())
    assert meta == META
    assert list(decoded) == list(arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(decoded[name], value)
        assert decoded[name].dtype == value.dtype
    # Decoded arrays are views of the received buffers, not copies.
    assert np.shares_memory(decoded["rewards"], np.frombuffer(frames[4], np.uint8))


def test_non_contiguous_arrays_are_sent_correctly():
    arrays = _message()
    arrays["observations/state"] = np.asfortranarray(arrays["observations/state"])
    decoded, _ = decode(_bytes_frames(encode(arrays, META)), _spec())
    np.testing.assert_array_equal(decoded["observations/state"], arrays["observations/state"])


def _reject(frames, spec=None):
    with pytest.raises(RejectedMessage) as info:
        decode(frames, spec or _spec())
    return info.value.reason


def test_rejections_name_their_reason():
    good = _bytes_frames(encode(_message(), META))
    assert _reject(good[:-1]) == "frame_count"
    assert _reject([b"\xc1garbage"] + good[1:]) == "header_malformed"
    assert _reject([msgpack.packb([1, 2, 3])] + good[1:]) == "header_malformed"
    assert _reject([b"x" * (MAX_HEADER_BYTES + 1)] + good[1:]) == "header_too_large"
    truncated = good[:4] + [good[4][:-4]] + good[5:]
    assert _reject(truncated) == "byte_count"

    wrong_dtype = _message()
    wrong_dtype["rewards"] = wrong_dtype["rewards"].astype(np.float64)
    assert _reject(_bytes_frames(encode(wrong_dtype, META))) == "dtype_mismatch"
    wrong_shape = _message()
    wrong_shape["rewards"] = np.zeros((2, 4), np.float32)
    assert _reject(_bytes_frames(encode(wrong_shape, META))) == "shape_mismatch"
    renamed = {("reward" if k == "rewards" else k): v for k, v in _message().items()}
    assert _reject(_bytes_frames(encode(renamed, META))) == "array_names"
    assert _reject(_bytes_frames(encode(_message(), {**META, "extra": 1}))) == "meta_fields"

    nan_reward = _message()
    nan_reward["rewards"][2, 1] = np.nan
    assert _reject(_bytes_frames(encode(nan_reward, META))) == "non_finite"
    inf_reward = _message()
    inf_reward["rewards"][0, 0] = -np.inf
    assert _reject(_bytes_frames(encode(inf_reward, META))) == "non_finite"


def test_oversized_messages_are_rejected_before_parsing():
    spec = _spec(max_message_bytes=_spec().payload_bytes + 1024)
    frames = _bytes_frames(encode(_message(), META))
    frames[1] = frames[1] + b"\0" * 10_000
    assert _reject(frames, spec) == "oversized"


def test_meta_must_be_integers():
    header = msgpack.unpackb(bytes(encode(_message(), META)[0]))
    header["meta"]["policy_version"] = "7"
    frames = _bytes_frames(encode(_message(), META))
    assert _reject([msgpack.packb(header)] + frames[1:]) == "meta_fields"


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_payloads_are_rejected_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(str(marker)))
    assert pickle.loads(payload) is not None  # the payload really does execute if unpickled
    assert marker.exists()
    os.remove(marker)
    good = _bytes_frames(encode(_message(), META))
    for frames in ([payload] + good[1:], [payload] * len(good), [payload]):
        _reject(frames)
    assert not marker.exists()


def test_spec_validation():
    with pytest.raises(ValueError, match="finite names unknown arrays"):
        MessageSpec.from_example(_message(), finite=("reward",))
    with pytest.raises(ValueError, match="max_message_bytes"):
        MessageSpec.from_example(_message(), max_message_bytes=10)
