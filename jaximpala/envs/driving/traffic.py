"""Other vehicles: Intelligent Driver Model car following and MOBIL-style lane changes.

Every vehicle has its own sampled driver (desired speed, time headway, accelerations, minimum
gap, politeness). Leaders and followers come from each env's objects sorted by lane and
position (`lanes.sort_env`): traffic, the ego and pedestrians on the road, so vehicles brake
for the ego and for crossing pedestrians. The per-vehicle work is one compiled loop.
Traffic stays around the ego: vehicles that fall far behind reappear out of sensor range
ahead (and vice versa), in a lane with room for them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numba
import numpy as np
from numba.extending import register_jitable

from jaximpala.envs.driving.lanes import find, lane_center, sort_env
from jaximpala.envs.driving.noise import StepNoise, uniform_at

LATERAL_SPEED = 1.2  # m/s while changing lanes
LANE_CHANGE_COOLDOWN = 4.0  # s between lane-change decisions of one vehicle
SAFE_DECEL = 4.0  # MOBIL safety: a new follower must not need to brake harder than this
CHANGE_THRESHOLD = 0.2  # m/s^2 of advantage needed to change lanes
KEEP_RIGHT_BIAS = 0.1  # m/s^2 favouring a move to the right
RESPAWN_AHEAD = 200.0  # vehicles beyond this far ahead of the ego move behind it
RESPAWN_BEHIND = 80.0  # vehicles this far behind the ego move ahead of it
MAX_DECEL = 9.0
DECISION_PERIOD = 5  # steps between one driver's lane-change decisions
STREAM_RESPAWN = 30  # noise stream
# Driver used for objects that are not traffic (the ego, pedestrians) when MOBIL asks how a
# new follower would react.
DEFAULT_DRIVER = dict(time_headway=1.5, max_accel=1.5, comfort_decel=2.0, min_gap=2.0)

TRAFFIC_FIELDS = (
    "active", "s", "d", "lane", "speed", "accel", "length", "width", "desired_speed",
    "time_headway", "max_accel", "comfort_decel", "min_gap", "politeness", "cooldown",
)


@dataclass
class Traffic:
    """Batched traffic; every field is [N, M] (`active` bool, `lane` int64, others float64)."""

    active: np.ndarray
    s: np.ndarray
    d: np.ndarray
    lane: np.ndarray  # the lane the vehicle drives in (its target while changing lanes)
    speed: np.ndarray
    accel: np.ndarray
    length: np.ndarray
    width: np.ndarray
    desired_speed: np.ndarray
    time_headway: np.ndarray
    max_accel: np.ndarray
    comfort_decel: np.ndarray
    min_gap: np.ndarray
    politeness: np.ndarray
    cooldown: np.ndarray

    def heading_cos_sin(self, num_lanes: np.ndarray,
                        lane_width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cos and sin [N, M] of the heading relative to the road (num_lanes, lane_width:
        [N]). The heading is arctan2(y, x) of the lane-change lateral speed y (towards the
        lane centre, clipped to LATERAL_SPEED) and x = max(speed, 1); this returns
        x / |(x, y)| and y / |(x, y)|, within a few ulps of its cos and sin at a fraction of
        the cost of three trigonometric calls."""
        cos, sin = np.empty(self.s.shape), np.empty(self.s.shape)
        _heading_cos_sin(self.lane, self.d, self.speed, num_lanes, lane_width, cos, sin)
        return cos, sin


@numba.njit(cache=True)
def _heading_cos_sin(lane, d, speed, num_lanes, lane_width, cos, sin):
    """Kernel of `Traffic.heading_cos_sin`: lane, d, speed [N, M]; writes cos, sin [N, M]."""
    for i in range(lane.shape[0]):
        for j in range(lane.shape[1]):
            target = lane_center(lane[i, j], num_lanes[i], lane_width[i])
            lateral = min(max(target - d[i, j], -LATERAL_SPEED), LATERAL_SPEED)
            forward = max(speed[i, j], 1.0)
            length = math.sqrt(forward * forward + lateral * lateral)
            cos[i, j], sin[i, j] = forward / length, lateral / length


@register_jitable  # also callable from compiled kernels
def free_road_term(speed, desired_speed):
    """IDM's free-road term 1 - (v / v0)^4 (v0 floored at 0.1 m/s); the fourth power as two
    squarings, which numba compiles inline (a pow call per object cost more than the rest of
    the table)."""
    ratio = speed / max(desired_speed, 0.1)
    squared = ratio * ratio
    return 1.0 - squared * squared


@numba.njit(cache=True, error_model="numpy")
def _idm(free, speed, time_headway, max_accel, comfort_decel, min_gap, gap, dv):
    """`idm_accel` given its free-road term (`free_road_term`)."""
    desired_gap = min_gap + max(
        0.0, speed * time_headway + speed * dv / (2.0 * math.sqrt(max_accel * comfort_decel))
    )
    ratio = desired_gap / max(gap, 0.1)
    return min(max(max_accel * (free - ratio * ratio), -MAX_DECEL), max_accel)


def idm_accel(speed, desired_speed, time_headway, max_accel, comfort_decel, min_gap, gap, dv):
    """Intelligent Driver Model acceleration of one vehicle; gap may be +inf (no leader).

    a = a_max * (1 - (v / v0)^4 - (s* / gap)^2),  s* = s0 + max(0, v T + v dv / (2 sqrt(a b)))
    """
    return _idm(free_road_term(speed, desired_speed), speed, time_headway, max_accel,
                comfort_decel, min_gap, gap, dv)


@numba.njit(cache=True, error_model="numpy")
def _accel_of(i, who, lead, obj, driver):
    """IDM acceleration of object `who` of env i where it is, behind object `lead` (-1:
    free road). obj: [5, N, E] s, half length, speed, passable, free-road term; driver:
    [4, N, E] time headway, max accel, comfort decel, min gap."""
    s, half, speed = obj[0, i, who], obj[1, i, who], obj[2, i, who]
    gap, dv = np.inf, 0.0  # without a leader dv only scales a zero interaction term
    if lead >= 0:
        gap = obj[0, i, lead] - obj[1, i, lead] - s - half
        if obj[3, i, lead] > 0.0 and gap < 0.0:  # a pedestrian the vehicle is alongside
            gap = np.inf
        dv = speed - obj[2, i, lead]
    return _idm(obj[4, i, who], speed, driver[0, i, who], driver[1, i, who],
                driver[2, i, who], driver[3, i, who], gap, dv)


@numba.njit(cache=True, error_model="numpy")
def _mobil(i, j, lane, accel, politeness, num_lanes, keys, ids, obj, driver):
    """MOBIL lane choice of vehicle j of env i (current lane and IDM acceleration given):
    move left or right when the own gain plus politeness times the new follower's gain (a
    loss when negative) beats the threshold, and the new follower would not have to brake
    harder than SAFE_DECEL; the better side wins, left on a tie."""
    s, half = obj[0, i, j], obj[1, i, j]
    best_lane, best_gain = lane, -np.inf
    for direction, bias in ((1, -KEEP_RIGHT_BIAS), (-1, KEEP_RIGHT_BIAS)):
        new_lane = lane + direction
        if new_lane < 0 or new_lane >= num_lanes:
            continue
        leader = find(keys, ids, new_lane, s, 0)
        follower = find(keys, ids, new_lane, s, 1)
        safe, follower_gain = True, 0.0
        if follower >= 0:
            f_now = _accel_of(i, follower, leader, obj, driver)
            f_after = _accel_of(i, follower, j, obj, driver)
            gap_behind = s - half - obj[0, i, follower] - obj[1, i, follower]
            safe = f_after >= -SAFE_DECEL and gap_behind > 1.0
            follower_gain = f_after - f_now
        if leader >= 0:
            safe = safe and obj[0, i, leader] - obj[1, i, leader] - s - half > 1.0
        gain = (_accel_of(i, j, leader, obj, driver) - accel + politeness * follower_gain
                + bias)
        if safe and gain > CHANGE_THRESHOLD and gain > best_gain:
            best_lane, best_gain = new_lane, gain
    return best_lane


@numba.njit(cache=True, error_model="numpy")
def _drive(obj, driver, lane2d, valid2d, t_active, t_lane, t_d, t_cooldown, t_politeness,
           t_desired, solid_here, steps, num_lanes, lane_width, ego_s, respawn_base, dt, out):
    """Kernel of `step`: per env, sort the objects by (lane, s), give every vehicle its IDM
    acceleration behind its leader and (every DECISION_PERIOD steps, staggered, off
    cooldown, not at a solid divider) its MOBIL lane, move it, then respawn the vehicles
    that end up out of the ego's neighbourhood (room checked among the objects as they
    were). obj, driver: see `_accel_of`; lane2d, valid2d: [N, E]; t_*, solid_here: [N, M];
    steps, num_lanes, lane_width, ego_s, respawn_base (`StepNoise.stream_base`): [N].
    Writes out [6, N, M]: s, d, lane, speed, accel, cooldown."""
    n, e = lane2d.shape
    m = t_lane.shape[1]
    keys, ids = np.empty(e, np.int64), np.empty(e, np.int64)
    step_d = LATERAL_SPEED * dt
    for i in range(n):
        sort_env(obj[0, i], lane2d[i], valid2d[i], keys, ids)
        for j in range(m):
            lane = t_lane[i, j]
            s, v = obj[0, i, j], obj[2, i, j]
            accel = _accel_of(i, j, find(keys, ids, lane, s, 0), obj, driver)
            new_lane = lane
            if ((steps[i] + j) % DECISION_PERIOD == 0 and t_cooldown[i, j] <= 0.0
                    and t_active[i, j] and not solid_here[i, j]):
                new_lane = _mobil(i, j, lane, accel, t_politeness[i, j], num_lanes[i], keys,
                                  ids, obj, driver)
            new_speed = max(v + accel * dt, 0.0) * (1.0 if t_active[i, j] else 0.0)
            d = t_d[i, j]
            out[0, i, j] = s + 0.5 * (v + new_speed) * dt
            out[1, i, j] = d + min(max(lane_center(new_lane, num_lanes[i], lane_width[i]) - d,
                                       -step_d), step_d)
            out[2, i, j] = new_lane
            out[3, i, j] = new_speed
            out[4, i, j] = accel
            out[5, i, j] = (LANE_CHANGE_COOLDOWN if new_lane != lane
                            else t_cooldown[i, j] - dt)
        for j in range(m):
            offset = out[0, i, j] - ego_s[i]
            if t_active[i, j] and (offset > RESPAWN_AHEAD or offset < -RESPAWN_BEHIND):
                _respawn(i, j, offset, keys, ids, obj[0, i], num_lanes[i], lane_width[i],
                         ego_s[i], t_desired[i, j], respawn_base[i], out)


@numba.njit(cache=True, error_model="numpy")
def _respawn(i, j, offset, keys, ids, old_s, num_lanes, lane_width, ego_s, desired, base, out):
    """Move vehicle j of env i, which drifted `offset` from the ego, to the other end of the
    ego's neighbourhood, into a random lane when it has 20 m of room both ways among the
    objects as they were (else it tries again next step). Its three numbers are its slot's
    of the env's respawn stream (`base`)."""
    u0, u1, u2 = (uniform_at(base, 3 * j), uniform_at(base, 3 * j + 1),
                  uniform_at(base, 3 * j + 2))
    new_s = ego_s + 150.0 + 40.0 * u0 if offset < 0 else ego_s - 60.0 - 15.0 * u0
    new_lane = min(np.int64(u1 * num_lanes), num_lanes - 1)
    leader = find(keys, ids, new_lane, new_s, 0)
    follower = find(keys, ids, new_lane, new_s, 1)
    lead_s = old_s[leader] if leader >= 0 else np.inf
    follow_s = old_s[follower] if follower >= 0 else -np.inf
    if lead_s - new_s > 20.0 and new_s - follow_s > 20.0:
        out[0, i, j] = new_s
        out[1, i, j] = lane_center(new_lane, num_lanes, lane_width)
        out[2, i, j] = new_lane
        out[3, i, j] = desired * (0.7 + 0.3 * u2)
        out[5, i, j] = LANE_CHANGE_COOLDOWN


def step(
    traffic: Traffic,
    obstacles: dict[str, np.ndarray],
    num_lanes: np.ndarray,
    lane_width: np.ndarray,
    solid_here: np.ndarray,
    ego_s: np.ndarray,
    steps: np.ndarray,
    noise: StepNoise,
    dt: float,
) -> Traffic:
    """Advance traffic one step.

    obstacles: non-traffic objects (ego, pedestrians), each field [N, X]: s, lane, speed,
    half_length, valid, passable (ignored once a vehicle is alongside).
    num_lanes, lane_width, ego_s: [N]. solid_here: [N, M] bool, lane dividers solid at each
    vehicle. steps: [N] step counters (stagger lane decisions). noise: this step's random
    numbers (STREAM_RESPAWN, drawn only for vehicles that respawn).
    """
    n, m = traffic.s.shape
    e = m + obstacles["s"].shape[1]
    obj, driver = np.empty((5, n, e)), np.empty((len(_DRIVER_FIELDS), n, e))
    lane2d, valid2d = np.empty((n, e), np.int64), np.empty((n, e), bool)
    _object_table(traffic.s, traffic.length, traffic.speed, traffic.desired_speed,
                  traffic.lane, traffic.active, traffic.time_headway, traffic.max_accel,
                  traffic.comfort_decel, traffic.min_gap, obstacles["s"],
                  obstacles["half_length"], obstacles["speed"], obstacles["passable"],
                  obstacles["lane"], obstacles["valid"], _DEFAULT_DRIVER_ROW,
                  obj, driver, lane2d, valid2d)
    out = np.empty((6, n, m))
    _drive(obj, driver, lane2d, valid2d, traffic.active, traffic.lane, traffic.d,
           traffic.cooldown, traffic.politeness, traffic.desired_speed, solid_here, steps,
           num_lanes, lane_width, ego_s, noise.stream_base(STREAM_RESPAWN), dt, out)
    return dataclasses.replace(
        traffic, s=out[0], d=out[1], lane=out[2].astype(np.int64), speed=out[3],
        accel=out[4], cooldown=out[5],
    )


_DRIVER_FIELDS = ("time_headway", "max_accel", "comfort_decel", "min_gap")
_DEFAULT_DRIVER_ROW = np.array([DEFAULT_DRIVER[k] for k in _DRIVER_FIELDS])


@numba.njit(cache=True)
def _object_table(t_s, t_length, t_speed, t_desired, t_lane, t_active, t_headway, t_accel,
                  t_decel, t_gap, o_s, o_half, o_speed, o_passable, o_lane, o_valid,
                  default_driver, obj, driver, lane2d, valid2d):
    """Every object of every env, vehicles ([N, M] t_*) first, then the obstacles ([N, X]
    o_*): writes obj [5, N, E] and driver [4, N, E] (see `_accel_of`; obstacles get
    default_driver [4], and in MOBIL's imagination drive at 1.2 x their speed, >= 1 m/s)
    and lane2d, valid2d [N, E].
    One pass instead of a dozen concatenations (numpy's per-call cost dominated)."""
    m = t_s.shape[1]
    for i in range(t_s.shape[0]):
        for j in range(m):
            obj[0, i, j], obj[1, i, j] = t_s[i, j], 0.5 * t_length[i, j]
            # Vehicles are never passable; pedestrians are once a vehicle is alongside
            # them (they wait for it): braking for them would deadlock the two.
            obj[2, i, j], obj[3, i, j], obj[4, i, j] = (
                t_speed[i, j], 0.0, free_road_term(t_speed[i, j], t_desired[i, j]))
            driver[0, i, j], driver[1, i, j] = t_headway[i, j], t_accel[i, j]
            driver[2, i, j], driver[3, i, j] = t_decel[i, j], t_gap[i, j]
            lane2d[i, j], valid2d[i, j] = t_lane[i, j], t_active[i, j]
        for x in range(o_s.shape[1]):
            k = m + x
            obj[0, i, k], obj[1, i, k], obj[2, i, k] = o_s[i, x], o_half[i, x], o_speed[i, x]
            obj[3, i, k] = 1.0 if o_passable[i, x] else 0.0
            obj[4, i, k] = free_road_term(o_speed[i, x], 1.2 * max(o_speed[i, x], 1.0))
            driver[:, i, k] = default_driver
            lane2d[i, k], valid2d[i, k] = o_lane[i, x], o_valid[i, x]
