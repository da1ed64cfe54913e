"""Other vehicles: Intelligent Driver Model car following and MOBIL-style lane changes.

Every vehicle has its own sampled driver (desired speed, time headway, accelerations, minimum
gap, politeness). Leaders and followers come from a `LaneIndex` over traffic, the ego and
pedestrians on the road, so vehicles brake for the ego and for crossing pedestrians.
Traffic stays around the ego: vehicles that fall far behind reappear out of sensor range
ahead (and vice versa), in a lane with room for them.
"""

from __future__ import annotations

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
        lateral = np.clip(target - self.d, -LATERAL_SPEED, LATERAL_SPEED)
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
    return np.clip(max_accel * (free - interaction), -MAX_DECEL, max_accel)


class _Objects:
    """Flat view of all objects ([N, E] -> [N*E]) that IDM and MOBIL look up by flat id."""

    def __init__(self, traffic: Traffic, obstacles: dict[str, np.ndarray]):
        self.num_envs, self.num_traffic = traffic.s.shape  # N, M
        cat = lambda a, b: np.concatenate([a, b], axis=1)
        self.s2d = cat(traffic.s, obstacles["s"])
        self.lane2d = cat(traffic.lane, obstacles["lane"])
        self.valid2d = cat(traffic.active, obstacles["valid"])
        self.per_env = self.s2d.shape[1]
        self.s = self.s2d.ravel()
        self.speed = cat(traffic.speed, obstacles["speed"]).ravel()
        self.half = cat(0.5 * traffic.length, obstacles["half_length"]).ravel()
        # Pedestrians a vehicle is already alongside stop mattering to it (they wait for it);
        # braking for them would deadlock the two.
        self.passable = cat(np.zeros(traffic.s.shape, bool), obstacles["passable"]).ravel()
        self.index = LaneIndex(self.s2d, self.lane2d, self.valid2d)
        # Driver of each object as MOBIL imagines it; non-traffic objects get DEFAULT_DRIVER.
        self.driver = {
            k: cat(getattr(traffic, k), np.full(obstacles["s"].shape, v)).ravel()
            for k, v in DEFAULT_DRIVER.items()
        }
        self.desired = cat(traffic.desired_speed,
                           np.maximum(obstacles["speed"], 1.0) * 1.2).ravel()

    def flat(self, env, who):
        """Flat ids of per-env object ids `who` ([Q], -1 for none stays -1)."""
        return np.where(who >= 0, env * self.per_env + who, -1)

    def leader(self, env, lane, s):
        """Flat id of the first object ahead of s in lane (or -1); inputs [Q]."""
        return self.flat(env, self.index.leader(env, lane, s))

    def follower(self, env, lane, s):
        """Flat id of the last object behind s in lane (or -1); inputs [Q]."""
        return self.flat(env, self.index.follower(env, lane, s))

    def accel_of(self, who, s, half, speed, leader):
        """IDM acceleration of object `who` (flat ids [Q]) placed at (s, half, speed) behind
        flat object `leader` (-1: free road)."""
        has = leader >= 0
        lead = np.where(has, leader, 0)
        gap = self.s[lead] - self.half[lead] - s - half
        gap = np.where(has & ~(self.passable[lead] & (gap < 0.0)), gap, np.inf)
        d = self.driver
        return idm_accel(speed, self.desired[who], d["time_headway"][who], d["max_accel"][who],
                         d["comfort_decel"][who], d["min_gap"][who], gap,
                         speed - self.speed[lead])


def _mobil(objects, traffic, env, me, lane, accel, num_lanes):
    """MOBIL lane choice of the vehicles with flat ids `me` ([Q]; env, lane, current accel
    and num_lanes [Q] alike): move left or right when the own gain plus politeness times the
    new follower's gain (a loss when negative) beats the threshold, and the new follower
    would not have to brake harder than SAFE_DECEL. Returns the chosen lanes [Q]."""
    s, v, half = objects.s[me], objects.speed[me], objects.half[me]
    politeness = traffic.politeness.ravel()[(me // objects.per_env) * objects.num_traffic
                                            + me % objects.per_env]
    best_gain = np.full(me.shape, -np.inf)
    best_lane = lane.copy()
    for direction, bias in ((1, -KEEP_RIGHT_BIAS), (-1, KEEP_RIGHT_BIAS)):
        new_lane = lane + direction
        ok = (new_lane >= 0) & (new_lane < num_lanes)
        new_leader = objects.leader(env, new_lane, s)
        new_follower = objects.follower(env, new_lane, s)
        my_new_accel = objects.accel_of(me, s, half, v, new_leader)
        has_f = new_follower >= 0
        f = np.where(has_f, new_follower, 0)
        f_now = objects.accel_of(f, objects.s[f], objects.half[f], objects.speed[f], new_leader)
        # the follower's IDM behind the changing vehicle: "leader" is the vehicle itself
        f_after = objects.accel_of(f, objects.s[f], objects.half[f], objects.speed[f], me)
        gap_behind = s - half - objects.s[f] - objects.half[f]
        lead = np.where(new_leader >= 0, new_leader, 0)
        gap_ahead = np.where(new_leader >= 0, objects.s[lead] - objects.half[lead] - s - half,
                             np.inf)
        safe = (~has_f | ((f_after >= -SAFE_DECEL) & (gap_behind > 1.0))) & (gap_ahead > 1.0)
        follower_gain = np.where(has_f, f_after - f_now, 0.0)
        gain = my_new_accel - accel + politeness * follower_gain + bias
        better = ok & safe & (gain > CHANGE_THRESHOLD) & (gain > best_gain)
        best_gain = np.where(better, gain, best_gain)
        best_lane = np.where(better, new_lane, best_lane)
    return best_lane


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
    numbers (drawn only when a vehicle respawns).
    """
    n, m = traffic.s.shape
    objects = _Objects(traffic, obstacles)
    env = np.repeat(np.arange(n), m)
    me = env * objects.per_env + np.tile(np.arange(m), n)  # flat ids of the traffic
    s, v, half = objects.s[me], objects.speed[me], objects.half[me]
    lane = traffic.lane.ravel()
    accel = objects.accel_of(me, s, half, v, objects.leader(env, lane, s))

    # Drivers reconsider their lane every DECISION_PERIOD steps, staggered across vehicles,
    # and only when off cooldown and not at a solid divider: a fifth of the queries per step.
    phase = (np.repeat(steps, m) + np.tile(np.arange(m), n)) % DECISION_PERIOD == 0
    can_change = (
        phase & (traffic.cooldown.ravel() <= 0.0) & traffic.active.ravel() & ~solid_here.ravel()
    )
    best_lane = lane.copy()
    pick = np.flatnonzero(can_change)
    if pick.size:
        best_lane[pick] = _mobil(objects, traffic, env[pick], me[pick], lane[pick],
                                 accel[pick], np.repeat(num_lanes, m)[pick])
    changing = best_lane != lane
    cooldown = np.where(changing, LANE_CHANGE_COOLDOWN, traffic.cooldown.ravel() - dt)

    new_speed = np.maximum(v + accel * dt, 0.0) * traffic.active.ravel()
    new_s = s + 0.5 * (v + new_speed) * dt
    new_lane = best_lane.reshape(n, m)
    target_d = lane_center(new_lane, num_lanes[:, None], lane_width[:, None])
    step_d = LATERAL_SPEED * dt
    new_d = traffic.d + np.clip(target_d - traffic.d, -step_d, step_d)

    moved = Traffic(
        active=traffic.active, s=new_s.reshape(n, m), d=new_d, lane=new_lane,
        speed=new_speed.reshape(n, m), accel=accel.reshape(n, m), length=traffic.length,
        width=traffic.width, desired_speed=traffic.desired_speed,
        time_headway=traffic.time_headway, max_accel=traffic.max_accel,
        comfort_decel=traffic.comfort_decel, min_gap=traffic.min_gap,
        politeness=traffic.politeness, cooldown=cooldown.reshape(n, m),
    )
    return _respawn(moved, objects, num_lanes, lane_width, ego_s, noise)


def _respawn(traffic, objects, num_lanes, lane_width, ego_s, noise):
    """Move vehicles that drifted out of the ego's neighbourhood to the other end of it, into
    a random lane when it has 20 m of room both ways (else they try again next step)."""
    n, m = traffic.s.shape
    offset = traffic.s - ego_s[:, None]
    far = traffic.active & ((offset > RESPAWN_AHEAD) | (offset < -RESPAWN_BEHIND))
    if not far.any():
        return traffic
    # Only the far vehicles (a few per step) are queried and moved.
    pick = np.flatnonzero(far.ravel())
    env = pick // m
    u = noise.uniform(STREAM_RESPAWN, 3 * m).reshape(n * m, 3)[pick]
    ego = ego_s[env]
    lanes = num_lanes[env]
    new_s = np.where(offset.ravel()[pick] < 0, ego + 150.0 + 40.0 * u[:, 0],
                     ego - 60.0 - 15.0 * u[:, 0])
    new_lane = np.minimum((u[:, 1] * lanes).astype(np.int64), lanes - 1)
    leader = objects.leader(env, new_lane, new_s)
    follower = objects.follower(env, new_lane, new_s)
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
