import jax.numpy as jnp
import numpy as np
import pytest

from jaximpala.transport.codec import RejectedMessage
from jaximpala.transport.params import decode_params, encode_params


def _params():
    return {"torso": {"kernel": jnp.arange(6.0).reshape(2, 3), "bias": jnp.zeros(3)},
            "obs_norm": {"count": jnp.asarray(5.0)}}


def test_round_trip_keeps_version_and_values_bit_for_bit():
    version, params = decode_params(encode_params(12, _params()), _params())
    assert version == 12
    np.testing.assert_array_equal(params["torso"]["kernel"], _params()["torso"]["kernel"])
    assert params["obs_norm"]["count"] == 5.0


def test_mismatched_or_garbage_frames_are_rejected():
    wrong_shape = _params()
    wrong_shape["torso"]["bias"] = jnp.zeros(4)
    with pytest.raises(RejectedMessage) as info:
        decode_params(encode_params(1, wrong_shape), _params())
    assert info.value.reason == "params_mismatch"
    assert "bias" in info.value.detail

    missing = {"torso": _params()["torso"]}
    with pytest.raises(RejectedMessage, match="params_mismatch"):
        decode_params(encode_params(1, missing), _params())

    wrong_dtype = _params()
    wrong_dtype["torso"]["kernel"] = wrong_dtype["torso"]["kernel"].astype(jnp.int32)
    with pytest.raises(RejectedMessage, match="params_mismatch"):
        decode_params(encode_params(1, wrong_dtype), _params())

    for frame in (b"", b"\0" * 8 + b"\xc1\xc1", b"abc"):
        with pytest.raises(RejectedMessage, match="params_malformed"):
            decode_params(frame, _params())
    with pytest.raises(ValueError, match="version"):
        encode_params(-1, _params())
