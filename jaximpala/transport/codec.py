"""Trajectory frames: `[msgpack header | raw buffer per array]`, validated, never pickled.

An actor encodes a flat mapping of named numpy arrays (e.g. ``"observations/camera"``) plus
a few integer metadata fields; each array travels as its own C-contiguous buffer, so a ZeroMQ
send can be zero-copy. The learner decodes against the run's expected `MessageSpec`:
every frame count, name, dtype, shape and byte count is checked, the message size is
bounded, and named float arrays must be finite. Anything else raises `RejectedMessage`
with a short machine-readable reason the receiver counts. Nothing received is unpickled:
the header is msgpack with bounded lengths and the buffers are read as raw numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import msgpack
import numpy as np

WIRE_VERSION = 1
# A header names each array and its shape: generous for hundreds of arrays, tiny next to
# any trajectory, and a bound an attacker cannot inflate.
MAX_HEADER_BYTES = 64 * 1024


class RejectedMessage(ValueError):
    """A received message that does not match the spec. `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ArraySpec(NamedTuple):
    """dtype: numpy dtype string (e.g. '<f4'); shape: exact shape."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.dtype(self.dtype).itemsize * np.prod(self.shape, dtype=np.int64))


@dataclasses.dataclass(frozen=True)
class MessageSpec:
    """What a valid message must contain.

    arrays: name -> ArraySpec, in wire order.
    meta_fields: names of the required integer metadata fields.
    finite: names of float arrays that must hold no NaN or inf (e.g. rewards).
    max_message_bytes: bound on the sum of all frame lengths.
    """

    arrays: Mapping[str, ArraySpec]
    meta_fields: tuple[str, ...] = ()
    finite: tuple[str, ...] = ()
    max_message_bytes: int = 256 * 1024 * 1024

    def __post_init__(self):
        missing = [name for name in self.finite if name not in self.arrays]
        if missing:
            raise ValueError(f"MessageSpec.finite names unknown arrays: {missing}")
        if self.max_message_bytes < self.payload_bytes:
            raise ValueError(
                f"MessageSpec.max_message_bytes={self.max_message_bytes} is below the "
                f"{self.payload_bytes} bytes a valid message carries")

    @property
    def payload_bytes(self) -> int:
        return sum(spec.nbytes for spec in self.arrays.values())

    @classmethod
    def from_example(cls, arrays: Mapping[str, np.ndarray], **kwargs) -> MessageSpec:
        """The spec that `arrays` (a representative message) satisfies."""
        specs = {name: ArraySpec(np.asarray(a).dtype.str, tuple(np.shape(a)))
                 for name, a in arrays.items()}
        return cls(arrays=specs, **kwargs)


def encode(arrays: Mapping[str, np.ndarray], meta: Mapping[str, int]) -> list:
    """Frames for one message: a msgpack header, then one buffer per array.

    Args:
      arrays: name -> array, in wire order. Non-contiguous arrays are copied once.
      meta: small integer fields (policy version, actor id, incarnation, sequence number).

    Returns:
      `[header_bytes, buffer, ...]`; the buffers are memoryviews of the arrays (zero-copy
      with `socket.send_multipart(frames, copy=False)`).
    """
    contiguous = [(name, np.ascontiguousarray(a)) for name, a in arrays.items()]
    header = {
        "v": WIRE_VERSION,
        "meta": {k: int(v) for k, v in meta.items()},
        "arrays": [[name, a.dtype.str, list(a.shape)] for name, a in contiguous],
    }
    return [msgpack.packb(header, use_bin_type=True)] + [
        memoryview(a).cast("B") if a.size else b"" for _, a in contiguous]


def _frame_len(frame) -> int:
    return memoryview(frame).nbytes


def _parse_header(frame) -> dict:
    if _frame_len(frame) > MAX_HEADER_BYTES:
        raise RejectedMessage("header_too_large", f"{_frame_len(frame)} bytes")
    try:
        header = msgpack.unpackb(
            bytes(frame), raw=False, strict_map_key=True, max_bin_len=0, max_ext_len=0,
            max_str_len=4096, max_array_len=100_000, max_map_len=1024)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise RejectedMessage("header_malformed", type(error).__name__) from None
    if not isinstance(header, dict) or header.get("v") != WIRE_VERSION:
        raise RejectedMessage("header_malformed", "not a version-1 header")
    if not isinstance(header.get("meta"), dict) or not isinstance(header.get("arrays"), list):
        raise RejectedMessage("header_malformed", "missing meta or arrays")
    return header


def _check_meta(meta: dict, spec: MessageSpec) -> dict[str, int]:
    fields = set(meta)
    if fields != set(spec.meta_fields):
        raise RejectedMessage("meta_fields", f"got {sorted(fields)}")
    for name, value in meta.items():
        if type(value) is not int:
            raise RejectedMessage("meta_fields", f"{name} is not an integer")
    return meta


def _check_entry(entry, name: str, expected: ArraySpec, frame) -> np.ndarray:
    if not (isinstance(entry, list) and len(entry) == 3):
        raise RejectedMessage("header_malformed", "array entry is not [name, dtype, shape]")
    got_name, got_dtype, got_shape = entry
    if got_name != name:
        raise RejectedMessage("array_names", f"expected {name!r}, got {got_name!r}")
    if got_dtype != expected.dtype:
        raise RejectedMessage("dtype_mismatch", f"{name}: {got_dtype!r} != {expected.dtype!r}")
    if not isinstance(got_shape, list) or tuple(got_shape) != expected.shape:
        raise RejectedMessage("shape_mismatch", f"{name}: {got_shape} != {list(expected.shape)}")
    if _frame_len(frame) != expected.nbytes:
        raise RejectedMessage("byte_count",
                              f"{name}: {_frame_len(frame)} bytes != {expected.nbytes}")
    return np.frombuffer(frame, dtype=expected.dtype).reshape(expected.shape)


def decode(frames: Sequence, spec: MessageSpec) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Validates frames against `spec` and returns `(arrays, meta)`.

    The arrays are read-only views of the received buffers (no copy).

    Raises:
      RejectedMessage: with `reason` one of frame_count, oversized, header_too_large,
        header_malformed, meta_fields, array_names, dtype_mismatch, shape_mismatch,
        byte_count, non_finite.
    """
    if len(frames) != 1 + len(spec.arrays):
        raise RejectedMessage("frame_count", f"{len(frames)} frames != {1 + len(spec.arrays)}")
    total = sum(_frame_len(f) for f in frames)
    if total > spec.max_message_bytes:
        raise RejectedMessage("oversized", f"{total} bytes > {spec.max_message_bytes}")
    header = _parse_header(frames[0])
    meta = _check_meta(header["meta"], spec)
    entries = header["arrays"]
    if len(entries) != len(spec.arrays):
        raise RejectedMessage("array_names", f"{len(entries)} arrays != {len(spec.arrays)}")
    arrays = {
        name: _check_entry(entry, name, expected, frame)
        for entry, (name, expected), frame in zip(entries, spec.arrays.items(), frames[1:],
                                                  strict=True)
    }
    for name in spec.finite:
        if not np.isfinite(arrays[name]).all():
            raise RejectedMessage("non_finite", f"{name} holds NaN or inf")
    return arrays, meta
