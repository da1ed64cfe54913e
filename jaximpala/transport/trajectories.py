"""`Trajectory` <-> wire frames, checked against the run's expected trajectory.

Every leaf of the `Trajectory` pytree travels as one raw buffer named by its tree path
(e.g. ``.observations['camera']``), after a msgpack header; the learner rebuilds the
pytree from the treedef of an example trajectory. On top of the codec's checks (names,
dtypes, shapes, byte counts, size bound, finite floats), a message's `policy_version`
metadata must agree with the `policy_versions` column it carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np

from jaximpala.trajectory import Trajectory
from jaximpala.transport.codec import MAX_HEADER_BYTES, MessageSpec, RejectedMessage, decode, encode

# Integer metadata every trajectory message carries.
META_FIELDS = ("actor_id", "incarnation", "sequence", "policy_version")
# Float fields the learner computes losses from: a NaN or inf here would poison an update.
FINITE_FIELDS = ("rewards", "discounts", "behaviour_log_probs", "behaviour_values")


def _leaf_name(path) -> str:
    return jax.tree_util.keystr(path)


class TrajectoryCodec:
    """Encodes and validates trajectories shaped like `example` (`[T(+1), N, ...]` leaves).

    Args:
      example: a trajectory from the run's env and agent (e.g. one `Collector.collect`).
      max_message_bytes: bound on a message's size (default: the exact payload plus the
        largest header allowed, since a valid message is never larger).
    """

    def __init__(self, example: Trajectory, *, max_message_bytes: int | None = None):
        leaves, self.treedef = jax.tree_util.tree_flatten_with_path(example)
        arrays = {_leaf_name(path): np.asarray(leaf) for path, leaf in leaves}
        names = list(arrays)
        finite = tuple(name for name in names if name.lstrip(".") in FINITE_FIELDS)
        payload = sum(a.nbytes for a in arrays.values())
        self.spec = MessageSpec.from_example(
            arrays, meta_fields=META_FIELDS, finite=finite,
            max_message_bytes=max_message_bytes or payload + MAX_HEADER_BYTES)
        self.num_envs = int(np.shape(example.policy_versions)[0])

    def encode(self, trajectory: Trajectory, meta: Mapping[str, int]) -> list:
        """`[header, buffer, ...]`; send with `copy=False` for zero-copy."""
        leaves = jax.tree_util.tree_leaves(trajectory)
        return encode(dict(zip(self.spec.arrays, leaves, strict=True)), meta)

    def decode(self, frames: Sequence) -> tuple[Trajectory, dict[str, int]]:
        """The trajectory (read-only views of `frames`) and its metadata.

        Raises:
          RejectedMessage: see `codec.decode`; also ``meta_mismatch`` when the
            `policy_version` field disagrees with the `policy_versions` column.
        """
        arrays, meta = decode(frames, self.spec)
        trajectory = jax.tree_util.tree_unflatten(self.treedef, list(arrays.values()))
        if not (np.asarray(trajectory.policy_versions) == meta["policy_version"]).all():
            raise RejectedMessage("meta_mismatch", "policy_versions differ from the header")
        return trajectory, meta
