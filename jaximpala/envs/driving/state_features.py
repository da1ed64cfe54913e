"""The `state` observation's features (`spaces.STATE_FIELDS`) in one compiled loop over envs.

Every feature is plain float64 arithmetic (no transcendental functions), so the kernel gives
the values the equivalent whole-array numpy code gives, bit for bit, without ~40 small numpy
calls per step.
"""

from __future__ import annotations

import numba
import numpy as np

from jaximpala.envs.driving.lanes import lane_center, lane_index
from jaximpala.envs.driving.scenario import GRID_STEP
from jaximpala.envs.driving.spaces import STATE_BOUND, state_size

CURVATURE_LOOKAHEAD = 30.0


@numba.njit(cache=True)
def grid_at(grid, s):
    """One env's road grid [G] at arc length s (clamped to the grid)."""
    index = min(max(np.int64(s / GRID_STEP), 0), grid.size - 1)
    return grid[index]


@numba.njit(cache=True)
def _clipped(x):
    """x clipped to +-STATE_BOUND like np.maximum / np.minimum (NaN stays NaN)."""
    if x != x:
        return x
    return min(max(x, np.float32(-STATE_BOUND)), np.float32(STATE_BOUND))


@numba.njit(cache=True)
def _features(ego, gear, signal, yaw_rate, accel, prev_controls, half_width, road, num_lanes,
              condition, curvature, crosswalk_distance, crosswalk_occupied, solid_here,
              route_length, max_steer, out):
    """out [N, F] float32 in STATE_FIELDS order. ego: [5, N] s, d, heading, speed, steer;
    gear, signal, num_lanes, condition: [N] ints; yaw_rate, accel, half_width,
    crosswalk_distance: [N]; crosswalk_occupied, solid_here: [N] bool; prev_controls: [N, 3];
    road: [3, N] lane width, speed limit, goal s; curvature: [N, G] road grid."""
    for i in range(out.shape[0]):
        s, d, heading, speed, steer = ego[0, i], ego[1, i], ego[2, i], ego[3, i], ego[4, i]
        width, lanes = road[0, i], num_lanes[i]
        lane = lane_index(d, lanes, width)
        row = np.zeros(out.shape[1])
        row[0] = speed / 30.0
        row[1] = heading
        row[2] = (d - lane_center(lane, lanes, width)) / width
        row[3] = d / half_width[i]
        row[4] = yaw_rate[i]
        row[5:8] = prev_controls[i]
        row[8 + gear[i]] = 1.0
        row[11 + signal[i]] = 1.0
        row[14] = (road[2, i] - s) / route_length
        row[15] = road[1, i] / 30.0
        row[16 + condition[i]] = 1.0
        row[19] = 50.0 * grid_at(curvature[i], s)
        row[20] = 50.0 * grid_at(curvature[i], s + CURVATURE_LOOKAHEAD)
        row[21] = lane / max(lanes - 1, 1)
        row[22] = lanes / 4.0
        row[23] = width / 4.0
        row[24] = min(crosswalk_distance[i] / 100.0, 1.0)
        row[25] = crosswalk_occupied[i]
        row[26] = steer / max_steer
        row[27] = accel[i] / 10.0
        row[28] = solid_here[i]
        for f in range(out.shape[1]):
            out[i, f] = _clipped(np.float32(row[f]))


def features(ego, gear, signal, yaw_rate, accel, prev_controls, half_width, road, num_lanes,
             condition, curvature, crosswalk_distance, crosswalk_occupied, solid_here,
             route_length, max_steer) -> np.ndarray:
    """[N, len(STATE_FIELDS)] float32 state features, clipped to +-STATE_BOUND; arguments
    as `_features`."""
    out = np.empty((gear.shape[0], state_size()), np.float32)
    _features(ego, gear, signal, yaw_rate, accel, prev_controls, half_width, road, num_lanes,
              condition, curvature, crosswalk_distance, crosswalk_occupied, solid_here,
              float(route_length), float(max_steer), out)
    return out
