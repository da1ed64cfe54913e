"""Lane geometry helpers and a sorted lane index for leader/follower queries.

`LaneIndex` sorts every env's objects by (lane, s) once per step; any number of
"who is ahead of / behind position s in lane l" queries are then one `np.searchsorted` over the
flattened, globally sorted keys. Cost is O(E log E) per env, never O(E^2).
"""

from __future__ import annotations

import numpy as np

_S_OFFSET = 2**31  # keeps millimetre keys positive for s in (-2e6, 2e6) m
_LANE_SHIFT = np.int64(32)
_ENV_SHIFT = np.int64(36)
INVALID_LANE = 15  # invalid objects sort after every real lane (lanes are 0..3)


def road_half_width(num_lanes, lane_width):
    """[N] half width of the road."""
    return 0.5 * num_lanes * lane_width


def lane_of(d, num_lanes, lane_width):
    """Lane index (0 = rightmost) containing lateral offset d, clipped to the road.

    d: [N, ...]; num_lanes, lane_width: broadcastable (usually [N, 1]). Returns int64 array."""
    raw = np.floor((d + road_half_width(num_lanes, lane_width)) / lane_width)
    return np.minimum(np.maximum(raw, 0.0), num_lanes - 1).astype(np.int64)  # = np.clip


def lane_center(lane, num_lanes, lane_width):
    """Lateral offset of the centre of `lane`. Shapes broadcast like `lane_of`."""
    return (lane + 0.5) * lane_width - road_half_width(num_lanes, lane_width)


def _keys(lane, s):
    # maximum/minimum: np.clip's Python wrapper costs more than the arithmetic on these sizes
    millimetres = np.minimum(np.maximum(np.rint(s * 1000.0), -_S_OFFSET + 1), _S_OFFSET - 1)
    return (lane.astype(np.int64) << _LANE_SHIFT) | (millimetres.astype(np.int64) + _S_OFFSET)


class LaneIndex:
    """Objects of N envs, sorted per env by (lane, s).

    s, lane, valid: [N, E]. Invalid objects never answer a query.
    """

    def __init__(self, s: np.ndarray, lane: np.ndarray, valid: np.ndarray):
        num_envs, num_objects = s.shape
        # Each key carries its object id (column) in extra low bits, so one plain sort of all
        # envs' keys (env bits lead) orders every env by (lane, s, id) - the order of a stable
        # per-env argsort - and the ids come back out of the sorted keys.
        id_bits = max(int(num_objects - 1).bit_length(), 1)
        if num_envs >= 1 << (63 - int(_ENV_SHIFT) - id_bits):
            raise ValueError(f"LaneIndex: {num_envs} envs x {num_objects} objects overflow "
                             "the 63-bit sort keys")
        env = np.arange(num_envs, dtype=np.int64)[:, None]
        keys = (env << _ENV_SHIFT) | _keys(np.where(valid, lane, INVALID_LANE), s)
        tagged = np.sort(((keys << id_bits) | np.arange(num_objects)).ravel())
        self.flat_keys = tagged >> id_bits
        # object id (column in the [N, E] inputs) of each flat sorted position
        self.flat_object = tagged & ((1 << id_bits) - 1)
        self.num_objects = num_objects

    @classmethod
    def from_sorted(cls, flat_keys: np.ndarray, flat_object: np.ndarray, num_objects: int):
        """The index of already sorted flat keys (env << _ENV_SHIFT | lane key, [N*E]) and
        the object id of each; the traffic step's compiled loop sorts them itself."""
        index = cls.__new__(cls)
        index.flat_keys, index.flat_object, index.num_objects = flat_keys, flat_object, num_objects
        return index

    def lookup(self, env, lane, s, behind):
        """Object ids answering a batch of queries, -1 where none: for `behind` False the
        first object strictly ahead of s in lane (the leader), for True the last one strictly
        behind it (the follower). Inputs [Q]; one bisection for the whole batch."""
        keys = (env.astype(np.int64) << _ENV_SHIFT) | _keys(lane, s)
        # Keys are integers, so "before the first key >= k" is "after the last key <= k - 1";
        # k - 1 keeps k's env and lane bits (the s part of a key is never 0).
        behind = np.asarray(behind, np.int64)
        pos = np.searchsorted(self.flat_keys, keys - behind, side="right") - behind
        return self._same_lane(keys, pos)

    def leader(self, env, lane, s):
        """Object id of the first object strictly ahead of s in lane, or -1. Inputs [Q]."""
        return self.lookup(env, lane, s, np.zeros(np.shape(env), bool))

    def follower(self, env, lane, s):
        """Object id of the last object strictly behind s in lane, or -1. Inputs [Q]."""
        return self.lookup(env, lane, s, np.ones(np.shape(env), bool))

    def _same_lane(self, query_keys, pos):
        inside = (pos >= 0) & (pos < self.flat_keys.size)
        safe = np.where(inside, pos, 0)
        lane_and_env = ~np.int64((1 << int(_LANE_SHIFT)) - 1)
        same = inside & ((self.flat_keys[safe] & lane_and_env) == (query_keys & lane_and_env))
        return np.where(same, self.flat_object[safe], -1)
