"""Lane geometry helpers and a sorted lane index for leader/follower queries.

Each env's objects are sorted by (lane, s) once per step (`sort_env`); any number of "who is
ahead of / behind position s in lane l" queries are then bisections (`find`). Cost is
O(E log E) per env, never O(E^2). Compiled with numba: the traffic step's kernel calls them
per env, `LaneIndex` wraps them for batches of envs and queries.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import register_jitable

_S_OFFSET = 2**31  # keeps millimetre keys positive for s in (-2e6, 2e6) m
_LANE_SHIFT = 32
INVALID_LANE = 15  # invalid objects sort after every real lane (lanes are 0..3)


@register_jitable  # also callable from compiled kernels
def road_half_width(num_lanes, lane_width):
    """[N] half width of the road."""
    return 0.5 * num_lanes * lane_width


def lane_of(d, num_lanes, lane_width):
    """Lane index (0 = rightmost) containing lateral offset d, clipped to the road.

    d: [N, ...]; num_lanes, lane_width: broadcastable (usually [N, 1]). Returns int64 array."""
    raw = np.floor((d + road_half_width(num_lanes, lane_width)) / lane_width)
    return np.minimum(np.maximum(raw, 0.0), num_lanes - 1).astype(np.int64)  # = np.clip


@numba.njit(cache=True)
def lane_index(d, num_lanes, lane_width):
    """`lane_of` of one object (scalars), for compiled kernels."""
    raw = np.floor((d + road_half_width(num_lanes, lane_width)) / lane_width)
    return np.int64(min(max(raw, 0.0), num_lanes - 1))


@register_jitable  # also callable from compiled kernels
def lane_center(lane, num_lanes, lane_width):
    """Lateral offset of the centre of `lane`. Shapes broadcast like `lane_of`."""
    return (lane + 0.5) * lane_width - road_half_width(num_lanes, lane_width)


@numba.njit(cache=True)
def object_key(lane, s):
    """One sortable int64 for (lane, s): the lane above the millimetres of s."""
    millimetres = min(max(np.rint(s * 1000.0), -_S_OFFSET + 1.0), _S_OFFSET - 1.0)
    return (np.int64(lane) << _LANE_SHIFT) | (np.int64(millimetres) + _S_OFFSET)


@numba.njit(cache=True)
def sort_env(s, lane, valid, keys, ids):
    """Sort one env's objects (s, lane, valid: [E]) by (lane, s, column) - invalid ones last -
    into their keys [E] and object ids [E]. The column rides in extra low bits of each key,
    so one plain sort gives the order of a stable argsort."""
    id_bits = max(1, int(np.ceil(np.log2(max(s.size, 2)))))
    for j in range(s.size):
        keys[j] = (object_key(lane[j] if valid[j] else INVALID_LANE, s[j]) << id_bits) | j
    keys.sort()
    for j in range(s.size):
        ids[j] = keys[j] & ((1 << id_bits) - 1)
        keys[j] >>= id_bits


@numba.njit(cache=True)
def find(keys, ids, lane, s, behind):
    """One query on one env's sorted keys and ids ([E], from `sort_env`): the object id of
    the first object strictly ahead of s in lane (behind 0: the leader) or of the last one
    strictly behind it (behind 1: the follower), or -1."""
    query = object_key(lane, s)
    # Keys are integers, so "before the first key >= k" is "after the last key <= k - 1";
    # k - 1 keeps k's lane bits (the s part of a key is never 0).
    pos = np.searchsorted(keys, query - behind, side="right") - behind
    if 0 <= pos < keys.size and (keys[pos] >> _LANE_SHIFT) == (query >> _LANE_SHIFT):
        return ids[pos]
    return -1


@numba.njit(cache=True)
def _sort_all(s, lane, valid, keys, ids):
    for i in range(s.shape[0]):
        sort_env(s[i], lane[i], valid[i], keys[i], ids[i])


@numba.njit(cache=True)
def _find_all(keys, ids, env, lane, s, behind):
    out = np.empty(env.size, np.int64)
    for q in range(env.size):
        out[q] = find(keys[env[q]], ids[env[q]], lane[q], s[q], behind[q])
    return out


class LaneIndex:
    """Objects of N envs, sorted per env by (lane, s): any number of "who is ahead of /
    behind position s in lane l" queries are then bisections.

    s, lane, valid: [N, E]. Invalid objects never answer a query.
    """

    def __init__(self, s: np.ndarray, lane: np.ndarray, valid: np.ndarray):
        self.keys = np.empty(s.shape, np.int64)
        self.ids = np.empty(s.shape, np.int64)
        _sort_all(np.ascontiguousarray(s, np.float64), np.ascontiguousarray(lane, np.int64),
                  np.ascontiguousarray(valid, bool), self.keys, self.ids)

    def lookup(self, env, lane, s, behind):
        """Object ids answering a batch of queries, -1 where none: for `behind` False the
        first object strictly ahead of s in lane (the leader), for True the last one strictly
        behind it (the follower). Inputs [Q]."""
        as_array = lambda x, dtype: np.ascontiguousarray(x, dtype).reshape(-1)
        return _find_all(self.keys, self.ids, as_array(env, np.int64), as_array(lane, np.int64),
                         as_array(s, np.float64), as_array(behind, np.int64))

    def leader(self, env, lane, s):
        """Object id of the first object strictly ahead of s in lane, or -1. Inputs [Q]."""
        return self.lookup(env, lane, s, np.zeros(np.shape(env), bool))

    def follower(self, env, lane, s):
        """Object id of the last object strictly behind s in lane, or -1. Inputs [Q]."""
        return self.lookup(env, lane, s, np.ones(np.shape(env), bool))
