"""Parameter frames: `[8-byte big-endian version | flax msgpack of the params pytree]`.

The learner publishes one frame per update (latest only); an actor restores it into the
structure of its own params, so a frame of the wrong structure, shape or dtype is
rejected instead of silently corrupting the policy.
"""

from __future__ import annotations

import struct
from typing import Any

import jax
import numpy as np
from flax import serialization

from jaximpala.transport.codec import RejectedMessage

_VERSION = struct.Struct(">Q")


def encode_params(version: int, params: Any) -> bytes:
    """One frame holding `version` and the params pytree (device arrays are fetched)."""
    if version < 0:
        raise ValueError(f"params version must be >= 0, got {version}")
    host_params = jax.device_get(params)
    return _VERSION.pack(version) + serialization.msgpack_serialize(
        serialization.to_state_dict(host_params))


def decode_params(frame, template: Any) -> tuple[int, Any]:
    """`(version, params)` restored into the structure of `template`.

    Raises:
      RejectedMessage: reason ``params_malformed`` for a short or undecodable frame, or
        ``params_mismatch`` when its tree, shapes or dtypes differ from `template`.
    """
    data = bytes(frame)
    if len(data) < _VERSION.size:
        raise RejectedMessage("params_malformed", f"{len(data)}-byte frame")
    (version,) = _VERSION.unpack_from(data)
    try:
        state = serialization.msgpack_restore(data[_VERSION.size:])
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise RejectedMessage("params_malformed", type(error).__name__) from None
    try:
        params = serialization.from_state_dict(template, state)
    except (ValueError, KeyError, TypeError) as error:
        raise RejectedMessage("params_mismatch", str(error)[:200]) from None
    _check_leaves(template, params)
    return version, params


def _check_leaves(template: Any, params: Any) -> None:
    expected = jax.tree_util.tree_leaves_with_path(template)
    received = jax.tree_util.tree_leaves(params)
    if len(expected) != len(received):
        raise RejectedMessage("params_mismatch", "different number of leaves")
    for (path, want), got in zip(expected, received, strict=True):
        want, got = np.asarray(want), np.asarray(got)
        if want.shape != got.shape or want.dtype != got.dtype:
            raise RejectedMessage(
                "params_mismatch",
                f"{jax.tree_util.keystr(path)}: {got.dtype}{list(got.shape)} != "
                f"{want.dtype}{list(want.shape)}")
