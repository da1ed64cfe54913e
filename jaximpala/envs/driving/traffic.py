"""Other vehicles: Intelligent Driver Model car following and MOBIL-style lane changes.

Every vehicle has its own sampled driver (desired speed, time headway, accelerations, minimum
gap, politeness). Leaders and followers come from a `LaneIndex` over traffic, the ego and
pedestrians on the road, so vehicles brake for the ego and for crossing pedestrians.
Traffic stays around the ego: vehicles that fall far behind reappear out of sensor range
ahead (and vice versa), in a lane with room for them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numba
import numpy as np

from jaximpala.envs.driving.lanes import _S_OFFSET, INVALID_LANE, LaneIndex, lane_center
from jaximpala.envs.driving.noise import StepNoise

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

    def heading(self, num_lanes: np.ndarray, lane_width: np.ndarray) -> np.ndarray:
        """[N, M] heading relative to the road, from the lane-change lateral motion.
        num_lanes, lane_width: [N]."""
        target = lane_center(self.lane, num_lanes[:, None], lane_width[:, None])
        lateral = np.minimum(np.maximum(target - self.d, -LATERAL_SPEED), LATERAL_SPEED)  # clip
        return np.arctan2(lateral, np.maximum(self.speed, 1.0))


@numba.njit(cache=True, error_model="numpy")
def _idm(free, speed, time_headway, max_accel, comfort_decel, min_gap, gap, dv):
    """`idm_accel` given its free-road term free = 1 - (v / v0)^4 (numpy computes that
    power, so the compiled step rounds exactly as the array code it replaced)."""
    desired_gap = min_gap + max(
        0.0, speed * time_headway + speed * dv / (2.0 * math.sqrt(max_accel * comfort_decel))
    )
    ratio = desired_gap / max(gap, 0.1)
    return min(max(max_accel * (free - ratio * ratio), -MAX_DECEL), max_accel)


def idm_accel(speed, desired_speed, time_headway, max_accel, comfort_decel, min_gap, gap, dv):
    """Intelligent Driver Model acceleration of one vehicle; gap may be +inf (no leader).

    a = a_max * (1 - (v / v0)^4 - (s* / gap)^2),  s* = s0 + max(0, v T + v dv / (2 sqrt(a b)))
    """
    free = 1.0 - (speed / max(desired_speed, 0.1)) ** 4
    return _idm(free, speed, time_headway, max_accel, comfort_decel, min_gap, gap, dv)


def _free_term(speed: np.ndarray, desired_speed: np.ndarray) -> np.ndarray:
    """IDM's free-road term 1 - (v / v0)^4 of every object (any shape)."""
    return 1.0 - (speed / np.maximum(desired_speed, 0.1)) ** 4


@numba.njit(cache=True, error_model="numpy")
def _key(lane, s):
    """`lanes._keys` of one object: lane in the high bits, millimetres of s below."""
    millimetres = min(max(np.rint(s * 1000.0), -_S_OFFSET + 1.0), _S_OFFSET - 1.0)
    return (np.int64(lane) << 32) | (np.int64(millimetres) + _S_OFFSET)


@numba.njit(cache=True, error_model="numpy")
def _lookup(keys, ids, lane, s, behind):
    """`LaneIndex.lookup` of one query in one env's sorted keys [E] and object ids [E]."""
    query = _key(lane, s)
    pos = np.searchsorted(keys, query - behind, side="right") - behind
    if 0 <= pos < keys.size and (keys[pos] >> 32) == (query >> 32):
        return ids[pos]
    return -1


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
        leader = _lookup(keys, ids, new_lane, s, 0)
        follower = _lookup(keys, ids, new_lane, s, 1)
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
           solid_here, steps, num_lanes, lane_width, dt, out, flat_keys, flat_ids):
    """Kernel of `step` before respawning: per env, sort the objects by (lane, s), give every
    vehicle its IDM acceleration behind its leader and (every DECISION_PERIOD steps,
    staggered, off cooldown, not at a solid divider) its MOBIL lane, and move it.
    obj, driver: see `_accel_of`; lane2d, valid2d: [N, E]; t_*, solid_here: [N, M]; steps,
    num_lanes, lane_width: [N]. Writes out [6, N, M] (s, d, lane, speed, accel, cooldown)
    and the sorted flat keys/ids of `LaneIndex` (env << 36 | key, object id) [N * E]."""
    n, e = lane2d.shape
    m = t_lane.shape[1]
    id_bits = max(1, int(np.ceil(np.log2(max(e, 2)))))
    tagged = np.empty(e, np.int64)
    for i in range(n):
        for j in range(e):
            lane = lane2d[i, j] if valid2d[i, j] else INVALID_LANE
            tagged[j] = (_key(lane, obj[0, i, j]) << id_bits) | j
        tagged.sort()  # ties keep column order, as a stable sort would
        keys = tagged >> id_bits
        ids = tagged & ((1 << id_bits) - 1)
        flat_keys[i * e:(i + 1) * e] = (np.int64(i) << 36) | keys
        flat_ids[i * e:(i + 1) * e] = ids
        step_d = LATERAL_SPEED * dt
        for j in range(m):
            lane = t_lane[i, j]
            s, v = obj[0, i, j], obj[2, i, j]
            accel = _accel_of(i, j, _lookup(keys, ids, lane, s, 0), obj, driver)
            new_lane = lane
            if ((steps[i] + j) % DECISION_PERIOD == 0 and t_cooldown[i, j] <= 0.0
                    and t_active[i, j] and not solid_here[i, j]):
                new_lane = _mobil(i, j, lane, accel, t_politeness[i, j], num_lanes[i], keys,
                                  ids, obj, driver)
            new_speed = max(v + accel * dt, 0.0) * (1.0 if t_active[i, j] else 0.0)
            target_d = (new_lane + 0.5) * lane_width[i] - 0.5 * num_lanes[i] * lane_width[i]
            d = t_d[i, j]
            out[0, i, j] = s + 0.5 * (v + new_speed) * dt
            out[1, i, j] = d + min(max(target_d - d, -step_d), step_d)
            out[2, i, j] = new_lane
            out[3, i, j] = new_speed
            out[4, i, j] = accel
            out[5, i, j] = (LANE_CHANGE_COOLDOWN if new_lane != lane
                            else t_cooldown[i, j] - dt)


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
    numbers (drawn only when a vehicle respawns, and only for the envs concerned).
    """
    n, m = traffic.s.shape
    cat = lambda a, b: np.concatenate([a, b], axis=1)
    # Every object, vehicles first: [N, E] rows of one [5, N, E] table for the kernel.
    obj = np.stack([
        cat(traffic.s, obstacles["s"]),
        cat(0.5 * traffic.length, obstacles["half_length"]),
        cat(traffic.speed, obstacles["speed"]),
        # Pedestrians a vehicle is already alongside stop mattering to it (they wait for
        # it); braking for them would deadlock the two.
        cat(np.zeros(traffic.s.shape), obstacles["passable"]),
        # Non-traffic objects drive like DEFAULT_DRIVER at 1.2 x their speed (>= 1 m/s) in
        # MOBIL's imagination.
        cat(_free_term(traffic.speed, traffic.desired_speed),
            _free_term(obstacles["speed"], np.maximum(obstacles["speed"], 1.0) * 1.2)),
    ])
    e = obj.shape[2]
    driver = np.empty((len(_DRIVER_FIELDS), n, e))
    driver[:, :, :m] = [getattr(traffic, k) for k in _DRIVER_FIELDS]
    driver[:, :, m:] = _DEFAULT_COLUMN
    out = np.empty((6, n, m))
    flat_keys, flat_ids = np.empty(n * e, np.int64), np.empty(n * e, np.int64)
    _drive(obj, driver, cat(traffic.lane, obstacles["lane"]),
           cat(traffic.active, obstacles["valid"]), traffic.active, traffic.lane, traffic.d,
           traffic.cooldown, traffic.politeness, solid_here, steps, num_lanes, lane_width,
           dt, out, flat_keys, flat_ids)
    moved = dataclasses.replace(
        traffic, s=out[0], d=out[1], lane=out[2].astype(np.int64), speed=out[3],
        accel=out[4], cooldown=out[5],
    )
    old = _OldObjects(LaneIndex.from_sorted(flat_keys, flat_ids, e), obj[0].ravel(), e)
    return _respawn(moved, old, num_lanes, lane_width, ego_s, noise)


_DRIVER_FIELDS = ("time_headway", "max_accel", "comfort_decel", "min_gap")
_DEFAULT_COLUMN = np.array([DEFAULT_DRIVER[k] for k in _DRIVER_FIELDS])[:, None, None]


@dataclass
class _OldObjects:
    """All objects before the step's move, for respawn room checks: their lane index, flat
    positions [N*E] and E."""

    index: LaneIndex
    s: np.ndarray
    per_env: int

    def lookup(self, env, lane, s, behind):
        """Flat ids of leaders (`behind` False) or followers (True) of the queries, -1 for
        none; inputs [Q]. See `LaneIndex.lookup`."""
        who = self.index.lookup(env, lane, s, behind)
        return np.where(who >= 0, env * self.per_env + who, -1)


def _respawn(traffic, objects, num_lanes, lane_width, ego_s, noise):
    """Move vehicles that drifted out of the ego's neighbourhood to the other end of it, into
    a random lane when it has 20 m of room both ways (else they try again next step)."""
    m = traffic.s.shape[1]
    offset = traffic.s - ego_s[:, None]
    far = traffic.active & ((offset > RESPAWN_AHEAD) | (offset < -RESPAWN_BEHIND))
    pick = np.flatnonzero(far)
    if not pick.size:
        return traffic
    # Only the far vehicles (a few per step) are queried and moved, and only their envs'
    # numbers are drawn: three per vehicle slot.
    env, slot = pick // m, pick % m
    u = noise.uniform(STREAM_RESPAWN, 3 * m, rows=env).reshape(-1, m, 3)[
        np.arange(pick.size), slot]
    ego = ego_s[env]
    lanes = num_lanes[env]
    new_s = np.where(offset.ravel()[pick] < 0, ego + 150.0 + 40.0 * u[:, 0],
                     ego - 60.0 - 15.0 * u[:, 0])
    new_lane = np.minimum((u[:, 1] * lanes).astype(np.int64), lanes - 1)
    twice = lambda x: np.concatenate([x, x])
    around = objects.lookup(twice(env), twice(new_lane), twice(new_s),
                            np.arange(2 * pick.size) >= pick.size)
    leader, follower = around[: pick.size], around[pick.size:]
    lead_s = np.where(leader >= 0, objects.s[np.maximum(leader, 0)], np.inf)
    follow_s = np.where(follower >= 0, objects.s[np.maximum(follower, 0)], -np.inf)
    room = ((lead_s - new_s) > 20.0) & ((new_s - follow_s) > 20.0)
    moved, new_s, new_lane, u = pick[room], new_s[room], new_lane[room], u[room]
    center = lane_center(new_lane, num_lanes[moved // m], lane_width[moved // m])
    for name, value in (
        ("s", new_s), ("lane", new_lane), ("d", center),
        ("speed", traffic.desired_speed.ravel()[moved] * (0.7 + 0.3 * u[:, 2])),
        ("cooldown", LANE_CHANGE_COOLDOWN),
    ):
        updated = getattr(traffic, name).copy()
        updated.ravel()[moved] = value
        setattr(traffic, name, updated)
    return traffic
