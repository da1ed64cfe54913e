"""Other vehicles: Intelligent Driver Model car following and MOBIL-style lane changes.

Every vehicle has its own sampled driver (desired speed, time headway, accelerations, minimum
gap, politeness). Leaders and followers come from a `LaneIndex` over traffic, the ego and
pedestrians on the road, so vehicles brake for the ego and for crossing pedestrians.
Traffic stays around the ego: vehicles that fall far behind reappear out of sensor range
ahead (and vice versa), in a lane with room for them.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from jaximpala.envs.driving.lanes import LaneIndex, lane_center
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


def idm_accel(speed, desired_speed, time_headway, max_accel, comfort_decel, min_gap, gap, dv):
    """Intelligent Driver Model acceleration. All inputs broadcast; gap may be +inf (no leader).

    a = a_max * (1 - (v / v0)^4 - (s* / gap)^2),  s* = s0 + max(0, v T + v dv / (2 sqrt(a b)))
    """
    desired_gap = min_gap + np.maximum(
        0.0, speed * time_headway + speed * dv / (2.0 * np.sqrt(max_accel * comfort_decel))
    )
    free = 1.0 - (speed / np.maximum(desired_speed, 0.1)) ** 4
    interaction = (desired_gap / np.maximum(gap, 0.1)) ** 2
    # = np.clip(..., -MAX_DECEL, max_accel), without np.clip's Python-level overhead
    return np.minimum(np.maximum(max_accel * (free - interaction), -MAX_DECEL), max_accel)


@functools.lru_cache(maxsize=16)
def _traffic_ids(num_envs: int, num_traffic: int, per_env: int):
    """Env [N*M] and flat object id [N*M] of every traffic vehicle (shared, read-only)."""
    env = np.repeat(np.arange(num_envs), num_traffic)
    me = env * per_env + np.tile(np.arange(num_traffic), num_envs)
    env.flags.writeable = me.flags.writeable = False
    return env, me


class _Objects:
    """Flat view of all objects ([N, E] -> [N*E]) that IDM and MOBIL look up by flat id."""

    def __init__(self, traffic: Traffic, obstacles: dict[str, np.ndarray]):
        n, m = traffic.s.shape
        self.num_envs, self.num_traffic = n, m
        cat = lambda a, b: np.concatenate([a, b], axis=1)
        s2d = cat(traffic.s, obstacles["s"])
        self.per_env = s2d.shape[1]
        self.s = s2d.ravel()
        self.speed = cat(traffic.speed, obstacles["speed"]).ravel()
        self.half = cat(0.5 * traffic.length, obstacles["half_length"]).ravel()
        # Pedestrians a vehicle is already alongside stop mattering to it (they wait for it);
        # braking for them would deadlock the two.
        self.passable = cat(np.zeros(traffic.s.shape, bool), obstacles["passable"]).ravel()
        self.politeness = traffic.politeness.ravel()  # [N*M], traffic only
        self.index = LaneIndex(s2d, cat(traffic.lane, obstacles["lane"]),
                               cat(traffic.active, obstacles["valid"]))
        # Driver of each object as MOBIL imagines it, one row per IDM parameter (desired
        # speed, then _DRIVER_FIELDS); non-traffic objects get DEFAULT_DRIVER.
        driver = np.empty((1 + len(_DRIVER_FIELDS), n, self.per_env))
        driver[0, :, :m] = traffic.desired_speed
        driver[0, :, m:] = np.maximum(obstacles["speed"], 1.0) * 1.2
        driver[1:, :, :m] = [getattr(traffic, k) for k in _DRIVER_FIELDS]
        driver[1:, :, m:] = _DEFAULT_COLUMN
        self.driver = driver.reshape(len(driver), -1)

    def lookup(self, env, lane, s, behind):
        """Flat ids of leaders (`behind` False) or followers (True) of the queries, -1 for
        none; inputs [Q]. See `LaneIndex.lookup`."""
        who = self.index.lookup(env, lane, s, behind)
        return np.where(who >= 0, env * self.per_env + who, -1)

    def leader(self, env, lane, s):
        """Flat id of the first object ahead of s in lane (or -1); inputs [Q]."""
        return self.lookup(env, lane, s, np.zeros(env.shape, bool))

    def follower(self, env, lane, s):
        """Flat id of the last object behind s in lane (or -1); inputs [Q]."""
        return self.lookup(env, lane, s, np.ones(env.shape, bool))

    def accel_of(self, who, leader):
        """IDM acceleration of objects `who` (flat ids [Q]) where they are, behind flat objects
        `leader` ([Q], -1: free road)."""
        has = leader >= 0
        lead = np.where(has, leader, 0)
        s, half, speed = self.s[who], self.half[who], self.speed[who]
        gap = self.s[lead] - self.half[lead] - s - half
        gap = np.where(has & ~(self.passable[lead] & (gap < 0.0)), gap, np.inf)
        desired, time_headway, max_accel, comfort_decel, min_gap = self.driver[:, who]
        return idm_accel(speed, desired, time_headway, max_accel, comfort_decel, min_gap, gap,
                         speed - self.speed[lead])


_DRIVER_FIELDS = ("time_headway", "max_accel", "comfort_decel", "min_gap")
_DEFAULT_COLUMN = np.array([DEFAULT_DRIVER[k] for k in _DRIVER_FIELDS])[:, None, None]
# MOBIL's two options, left (lane + 1) then right, and the keep-right bias of each.
_DIRECTIONS = np.array([[1], [-1]])
_BIAS = np.array([[-KEEP_RIGHT_BIAS], [KEEP_RIGHT_BIAS]])


def _accelerations(objects, env, me, lane, s, can_change, num_lanes):
    """One batch of lane queries and one batch of IDM evaluations for a step: every
    vehicle's acceleration behind its leader ([N*M]), and MOBIL's lane choice of the vehicles
    that may change lanes (flat mask `can_change`). All inputs are flat [N*M] over traffic.
    Returns (accel [N*M], best lane [N*M])."""
    pick = np.flatnonzero(can_change)
    q = pick.size
    q_env, q_me, q_s = env[pick], me[pick], s[pick]
    new_lane = lane[pick] + _DIRECTIONS  # [2, Q]
    # queries: every vehicle's leader; then the leaders and followers in both target lanes
    around = objects.lookup(
        np.concatenate([env, q_env, q_env, q_env, q_env]),
        np.concatenate([lane, new_lane.ravel(), new_lane.ravel()]),
        np.concatenate([s, q_s, q_s, q_s, q_s]),
        np.arange(env.size + 4 * q) >= env.size + 2 * q,
    )
    leader = around[: env.size]
    new_leader = around[env.size: env.size + 2 * q].reshape(2, q)
    new_follower = around[env.size + 2 * q:].reshape(2, q)
    f = np.where(new_follower >= 0, new_follower, 0)
    # IDM: everyone behind their leader; a changer behind its new leader; the new follower
    # behind its current leader (the new leader) and behind the changer.
    accel = objects.accel_of(
        np.concatenate([me, q_me, q_me, f.ravel(), f.ravel()]),
        np.concatenate([leader, new_leader.ravel(), new_leader.ravel(), q_me, q_me]),
    )
    my_new_accel, f_now, f_after = accel[env.size:].reshape(3, 2, q)
    best_lane = lane.copy()
    if q:
        best_lane[pick] = _mobil(objects, pick, q_me, num_lanes[q_env], new_lane, new_leader,
                                 new_follower, accel[pick], my_new_accel, f_now, f_after)
    return accel[: env.size], best_lane


def _mobil(objects, pick, me, num_lanes, new_lane, new_leader, new_follower, accel,
           my_new_accel, f_now, f_after):
    """MOBIL lane choice of the vehicles `pick` (flat traffic ids [Q]; `me` their flat object
    ids, num_lanes of their roads, accel their current IDM accelerations; the rest [2, Q],
    for a move left then right):
    move when the own gain plus politeness times the new follower's gain (a loss when
    negative) beats the threshold, and the new follower would not have to brake harder than
    SAFE_DECEL; left wins a tie. Returns the chosen lanes [Q]."""
    s, half = objects.s[me], objects.half[me]
    politeness = objects.politeness[pick]
    has_f = new_follower >= 0
    f = np.where(has_f, new_follower, 0)
    ok = (new_lane >= 0) & (new_lane < num_lanes)
    gap_behind = s - half - objects.s[f] - objects.half[f]
    lead = np.where(new_leader >= 0, new_leader, 0)
    gap_ahead = np.where(new_leader >= 0, objects.s[lead] - objects.half[lead] - s - half,
                         np.inf)
    safe = (~has_f | ((f_after >= -SAFE_DECEL) & (gap_behind > 1.0))) & (gap_ahead > 1.0)
    follower_gain = np.where(has_f, f_after - f_now, 0.0)
    gain = my_new_accel - accel + politeness * follower_gain + _BIAS
    good = ok & safe & (gain > CHANGE_THRESHOLD)
    go_left = good[0]
    go_right = good[1] & (~go_left | (gain[1] > gain[0]))
    lane = new_lane[0] - _DIRECTIONS[0]
    return np.where(go_right, new_lane[1], np.where(go_left, new_lane[0], lane))


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
    objects = _Objects(traffic, obstacles)
    env, me = _traffic_ids(n, m, objects.per_env)
    s, v = traffic.s.ravel(), traffic.speed.ravel()
    lane = traffic.lane.ravel()
    # Drivers reconsider their lane every DECISION_PERIOD steps, staggered across vehicles,
    # and only when off cooldown and not at a solid divider: a fifth of the queries per step.
    phase = (steps[:, None] + np.arange(m)) % DECISION_PERIOD == 0
    can_change = (phase & (traffic.cooldown <= 0.0) & traffic.active & ~solid_here).ravel()
    accel, best_lane = _accelerations(objects, env, me, lane, s, can_change, num_lanes)
    changing = best_lane != lane
    cooldown = np.where(changing, LANE_CHANGE_COOLDOWN, traffic.cooldown.ravel() - dt)

    new_speed = np.maximum(v + accel * dt, 0.0) * traffic.active.ravel()
    new_s = s + 0.5 * (v + new_speed) * dt
    new_lane = best_lane.reshape(n, m)
    target_d = lane_center(new_lane, num_lanes[:, None], lane_width[:, None])
    step_d = LATERAL_SPEED * dt
    new_d = traffic.d + np.minimum(np.maximum(target_d - traffic.d, -step_d), step_d)

    moved = dataclasses.replace(
        traffic, s=new_s.reshape(n, m), d=new_d, lane=new_lane,
        speed=new_speed.reshape(n, m), accel=accel.reshape(n, m), cooldown=cooldown.reshape(n, m),
    )
    return _respawn(moved, objects, num_lanes, lane_width, ego_s, noise)


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
