"""The batched simulator core: N driving worlds stepped together.

`DrivingSim` owns the state of N envs (a leading env axis on every array) and knows nothing
of gymnasium: `reset(env_ids, episode_seeds)` starts fresh scenarios in some slots, `step`
advances all slots, `observe` returns the observation dict. The gymnasium single env is this
core with N=1 and the vector env is the same core with N slots.

Whole-array numpy operations do the per-env arithmetic; the per-object loops (traffic,
pedestrians, collisions, crosswalks, lidar rays) are numba-compiled kernels over all envs,
since at N=64 numpy's per-call overhead, not the arithmetic, bounded the step. Kernels take
transcendental functions (cos, sin, exp, powers) precomputed by numpy, so they round exactly
as the array code did. The first use compiles them (seconds); numba caches the result next
to the sources for later processes.
"""

from __future__ import annotations

import numba
import numpy as np

from jaximpala.envs.driving import camera as camera_mod
from jaximpala.envs.driving import lidar as lidar_mod
from jaximpala.envs.driving import (
    noise,
    pedestrians,
    reward,
    scenario,
    spaces,
    state_features,
    traffic,
)
from jaximpala.envs.driving.collision import ObjectBoxes, ego_hits_any
from jaximpala.envs.driving.config import DrivingConfig, num_pedestrians, num_traffic
from jaximpala.envs.driving.dynamics import (
    EgoParams,
    EgoState,
    Kinematics,
    lane_keeping_steer,
    step_ego,
)
from jaximpala.envs.driving.lanes import lane_center, lane_index, lane_of, road_half_width

# Noise stream ids: one per use, so uses within a step draw independent numbers (pedestrians
# and traffic own streams 20-39).
_STREAM_ROUGHNESS, _STREAM_LIDAR, _STREAM_RADAR = 1, 4, 5
_SCENARIO_ARRAYS = (
    "noise_key", "curvature", "slope", "solid", "num_lanes", "lane_width", "speed_limit",
    "condition", "friction", "roughness", "sensor_range", "sensor_noise", "goal_s",
    "crosswalk_s",
)


@numba.njit(cache=True)
def _crosswalk_status(crosswalk_s, ped_s, ped_d, ped_phase, half_width, ego_s, ego_half_length,
                      distance, next_occupied, in_occupied):
    """Per env: distance from the ego's front to the next crosswalk not yet behind its back
    (inf: none), whether a pedestrian on the road is on that crosswalk, and whether the ego
    overlaps an occupied crosswalk. crosswalk_s [N, C] sorted; ped_* [N, P]; half_width,
    ego_s [N]. Writes distance, next_occupied, in_occupied [N]."""
    half_cw = camera_mod.CROSSWALK_HALF_WIDTH
    for i in range(crosswalk_s.shape[0]):
        front, back = ego_s[i] + ego_half_length, ego_s[i] - ego_half_length
        distance[i], next_occupied[i], in_occupied[i] = np.inf, False, False
        found = False
        for cs in crosswalk_s[i]:
            occupied = False
            for p in range(ped_s.shape[1]):
                if (ped_phase[i, p] == pedestrians.CROSSING
                        and abs(ped_d[i, p]) < half_width[i] + 0.5 * pedestrians.SIZE
                        and abs(ped_s[i, p] - cs) < half_cw + 0.5):
                    occupied = True
                    break
            if occupied and cs - half_cw < front and cs + half_cw > back:
                in_occupied[i] = True
            if not found and cs + half_cw > back:
                found = True
                distance[i] = max(cs - half_cw - front, 0.0)
                next_occupied[i] = occupied


_OBSTACLE_FIELDS = (("s", np.float64), ("lane", np.int64), ("speed", np.float64),
                    ("half_length", np.float64), ("valid", bool), ("passable", bool))


@numba.njit(cache=True)
def _obstacle_columns(ego_s, ego_d, ego_speed, ego_length, ego_width, ped_s, ped_d, ped_side,
                      ped_phase, half_width, num_lanes, lane_width, s, lane, speed,
                      half_length, valid, passable):
    """Kernel of `DrivingSim._obstacles`: ego_* [N], ped_* [N, P], half_width, num_lanes,
    lane_width [N]; writes the columns (`_OBSTACLE_FIELDS`) [N, 2 + 2P]. The ego occupies
    the lanes of both its sides, a pedestrian on the road (`pedestrians.on_road`) its own
    lane and the one its next 1.5 m take it into; vehicles pass pedestrians they are
    alongside, never the ego."""
    p = ped_s.shape[1]
    for i in range(ego_s.shape[0]):
        lanes, width = num_lanes[i], lane_width[i]
        for c, side in ((0, -1.0), (1, 1.0)):
            s[i, c], speed[i, c] = ego_s[i], max(ego_speed[i], 0.0)
            lane[i, c] = lane_index(ego_d[i] + side * 0.5 * ego_width, lanes, width)
            half_length[i, c], valid[i, c], passable[i, c] = 0.5 * ego_length, True, False
        for j in range(p):
            on_road = pedestrians.on_road(ped_phase[i, j], ped_d[i, j], half_width[i])
            for c, d in ((2 + j, ped_d[i, j]), (2 + p + j, ped_d[i, j] + 1.5 * ped_side[i, j])):
                s[i, c], lane[i, c], speed[i, c] = ped_s[i, j], lane_index(d, lanes, width), 0.0
                half_length[i, c], valid[i, c] = 0.5 * pedestrians.SIZE, on_road
                passable[i, c] = True


CRAWL_SPEED = 1.0  # m/s: below this the ego has no time headway to keep


@numba.njit(cache=True)
def _following(ego_s, ego_d, ego_speed, ego_length, ego_width, t_s, t_d, t_length, t_width,
               t_speed, t_active, headway, ttc, lead_gap, lead_closing):
    """Per env, over the active vehicles ahead whose lateral extent overlaps the ego's
    ([N] ego_*, [N, M] t_*): the nearest one's bumper-to-bumper gap (m, >= 0; inf with none)
    and closing speed (ego speed - its speed; 0 with none); the time headway (s), that gap
    over the ego's speed (inf with none, or below CRAWL_SPEED); and the time to collision
    (s), the least gap over closing speed among those the ego is closing on (inf with none).
    Writes headway, ttc, lead_gap and lead_closing, [N] each."""
    for i in range(ego_s.shape[0]):
        gap, closing_nearest, time_to_collision = np.inf, 0.0, np.inf
        front = ego_s[i] + 0.5 * ego_length
        for j in range(t_s.shape[1]):
            if (t_active[i, j] and t_s[i, j] > ego_s[i]
                    and abs(t_d[i, j] - ego_d[i]) < 0.5 * (t_width[i, j] + ego_width)):
                gap_j = max(t_s[i, j] - 0.5 * t_length[i, j] - front, 0.0)
                closing = ego_speed[i] - t_speed[i, j]
                if gap_j < gap:
                    gap, closing_nearest = gap_j, closing
                if closing > 0.0:
                    time_to_collision = min(time_to_collision, gap_j / closing)
        headway[i] = gap / ego_speed[i] if ego_speed[i] >= CRAWL_SPEED else np.inf
        ttc[i] = time_to_collision
        lead_gap[i] = gap
        lead_closing[i] = closing_nearest


class DrivingSim:
    """N driving worlds. Call `reset` on every slot before the first `step`."""

    def __init__(self, config: DrivingConfig, num_envs: int, ego: EgoParams | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.num_envs = num_envs
        self.ego_params = ego or EgoParams()
        self.camera_geometry = camera_mod.CameraGeometry(
            config.camera_size, config.camera_meters_per_pixel
        )
        self._camera_scratch = None
        self._allocate()

    # ----------------------------------------------------------------------------- state
    def _allocate(self) -> None:
        n, m, p = self.num_envs, num_traffic(self.config), num_pedestrians(self.config)
        template = scenario.generate(self.config, [0])  # shapes and dtypes of one scenario
        self.road = {
            name: np.zeros((n, *getattr(template, name).shape[1:]),
                           getattr(template, name).dtype)
            for name in _SCENARIO_ARRAYS
        }
        zeros = lambda dtype=np.float64: np.zeros(n, dtype)
        self.ego = EgoState(s=zeros(), d=zeros(), heading=zeros(), speed=zeros(),
                            steer=zeros(), gear=zeros(np.int64))
        self.kinematics = Kinematics(progress=zeros(), accel=zeros(), lateral_accel=zeros(),
                                     yaw_rate=zeros(), steer_rate=zeros())
        self.prev_controls = np.zeros((n, 3))
        self.signal = zeros(np.int64)  # the turn signal shown on the last step
        # lane assist: the lane whose centre the car holds, and for how many steps in a row
        # the turn signal has asked to leave it
        self.assist_lane = zeros(np.int64)
        self.assist_hold = zeros(np.int64)
        self.steps = zeros(np.int64)
        self.episode_return = zeros()
        # [N, len(reward.SPELL_VIOLATIONS)]: speeding / failing to yield on the last step
        self.violating = np.zeros((n, len(reward.SPELL_VIOLATIONS)), bool)
        self.started = zeros(bool)  # slots that have had a reset
        self.half_width = zeros()  # road half width of each slot's episode
        # flat offset of each slot's row in the [N, G] road grids
        self._rows = np.arange(n)[:, None]
        self._grid_offsets = self._rows[:, 0] * template.curvature.shape[1]
        # Quantities derived from the current state that a step and the next observation
        # both need (crosswalk status, traffic headings, ...): computed once, dropped when the
        # state moves (step, reset).
        self._memo = {}
        self.traffic = traffic.Traffic(**{
            f: np.zeros((n, m), template.traffic[f].dtype if f in template.traffic else
                        np.float64)
            for f in traffic.TRAFFIC_FIELDS
        })
        # pedestrians' boxes for collisions, less their positions: upright squares
        ped_half = np.full((n, p), 0.5 * pedestrians.SIZE)
        self._pedestrian_boxes = ObjectBoxes(None, None, np.ones((n, p)), np.zeros((n, p)),
                                             ped_half, ped_half, np.ones((n, p), bool))
        self.peds = pedestrians.Pedestrians(
            s=np.zeros((n, p)), d=np.zeros((n, p)), side=np.ones((n, p)),
            speed=np.ones((n, p)), start_rate=np.zeros((n, p)),
            phase=np.zeros((n, p), np.int64),
        )

    def reset(self, env_ids: np.ndarray, episode_seeds: list[int]) -> None:
        """Start fresh episodes in slots `env_ids` ([K] ints) from `episode_seeds` ([K])."""
        env_ids = np.asarray(env_ids, dtype=np.int64)
        if env_ids.size == 0:
            return
        # One slot at a time: a reset usually starts one or two episodes, and writing each
        # scenario straight into its slot skips stacking them (numpy's per-call overhead,
        # not the copying, is the cost here).
        for slot, seed in zip(env_ids.tolist(), episode_seeds, strict=True):
            self._start_episode(slot, scenario.generate_one(self.config, seed))
        self._memo.clear()

    def _start_episode(self, slot: int, new: dict) -> None:
        """Write scenario `new` (`scenario.generate_one`) and a fresh episode into `slot`."""
        for name in _SCENARIO_ARRAYS:
            self.road[name][slot] = new[name]
        lanes, width = new["num_lanes"], new["lane_width"]
        ego, kin = self.ego, self.kinematics
        ego.s[slot] = scenario.EGO_START_S
        ego.d[slot] = lane_center(new["ego_lane"], lanes, width)
        ego.heading[slot] = ego.steer[slot] = 0.0
        ego.speed[slot] = new["ego_speed"]
        ego.gear[slot] = 2
        kin.progress[slot] = kin.accel[slot] = kin.lateral_accel[slot] = 0.0
        kin.yaw_rate[slot] = kin.steer_rate[slot] = 0.0
        self.prev_controls[slot] = 0.0
        self.signal[slot] = self.steps[slot] = 0
        self.assist_lane[slot] = new["ego_lane"]
        self.assist_hold[slot] = 0
        self.episode_return[slot] = 0.0
        self.violating[slot] = False
        self.started[slot] = True
        half = road_half_width(lanes, width)
        self.half_width[slot] = half
        t = new["traffic"]
        for field in traffic.TRAFFIC_FIELDS:
            if field in t:
                getattr(self.traffic, field)[slot] = t[field]
        self.traffic.d[slot] = lane_center(t["lane"], lanes, width)
        self.traffic.accel[slot] = 0.0
        self.traffic.cooldown[slot] = traffic.LANE_CHANGE_COOLDOWN
        ped = new["pedestrians"]
        self.peds.s[slot] = ped["s"]
        self.peds.side[slot] = ped["side"]
        self.peds.d[slot] = pedestrians.kerb_offset(ped["side"], np.array([half]))[0]
        self.peds.speed[slot] = ped["speed"]
        self.peds.start_rate[slot] = ped["start_rate"]
        self.peds.phase[slot] = np.where(ped["dormant"], pedestrians.DORMANT,
                                         pedestrians.WAITING)

    def _require_started(self) -> None:
        if not self.started.all():
            missing = np.flatnonzero(~self.started).tolist()
            raise RuntimeError(f"env slots {missing} were never reset: call reset first")

    # ------------------------------------------------------------------------ road lookups
    def _grid(self, name: str, s: np.ndarray) -> np.ndarray:
        """Road grid `name` sampled at arc lengths s ([N] or [N, K])."""
        grid = self.road[name]
        index = (s / scenario.GRID_STEP).astype(np.int64)
        np.minimum(np.maximum(index, 0, out=index), grid.shape[1] - 1, out=index)
        index += self._grid_offsets.reshape((-1,) + (1,) * (s.ndim - 1))
        return grid.ravel().take(index)

    def _memoised(self, name: str, compute):
        """compute() of the current state, computed once until the state moves."""
        value = self._memo.get(name)
        if value is None:
            value = self._memo[name] = compute()
        return value

    def _crosswalk_status(self):
        """Per env [N]: distance to the next crosswalk, whether it is occupied, and whether the
        ego is inside an occupied crosswalk. The reward and the observation both need it."""
        return self._memoised("crosswalks", self._compute_crosswalk_status)

    def _solid_here(self) -> np.ndarray:
        """[N] bool: lane dividers are solid at the ego."""
        return self._memoised("solid_here", lambda: self._grid("solid", self.ego.s))

    def _traffic_cos_sin(self) -> tuple[np.ndarray, np.ndarray]:
        """cos and sin [N, M] of the traffic headings (lidar and collisions both need them)."""
        return self._memoised("traffic_cos_sin", lambda: self.traffic.heading_cos_sin(
            self.road["num_lanes"], self.road["lane_width"]))

    def _compute_crosswalk_status(self):
        distance = np.empty(self.num_envs)
        next_occupied = np.empty(self.num_envs, bool)
        in_occupied = np.empty(self.num_envs, bool)
        _crosswalk_status(self.road["crosswalk_s"], self.peds.s, self.peds.d, self.peds.phase,
                          self.half_width, self.ego.s, 0.5 * self.ego_params.length,
                          distance, next_occupied, in_occupied)
        return distance, next_occupied, in_occupied

    # -------------------------------------------------------------------------------- step
    def step(self, steer, throttle, brake, gear, signal):
        """Advance every slot one step with validated, clipped controls ([N] each).

        Returns (reward [N], terminated [N] bool, truncated [N] bool, info dict of [N])."""
        self._require_started()
        cfg, road = self.config, self.road
        dt = cfg.dt
        ego_old = self.ego
        self._memo.clear()  # in-place edits of the state (tests) count as moves
        half_width = self.half_width
        lanes, width = road["num_lanes"], road["lane_width"]
        old_lane = lane_of(ego_old.d, lanes, width)
        step_noise = noise.StepNoise(road["noise_key"], self.steps)
        accel_noise = (
            road["roughness"]
            * step_noise.normal(_STREAM_ROUGHNESS, 1)[:, 0]
            * np.minimum(np.abs(ego_old.speed) / 5.0, 1.0)
        )
        prev_accel = self.kinematics.accel
        curvature = self._grid("curvature", ego_old.s)
        steer_cmd, steering = steer, cfg.steering
        if steering == "lane_assist":
            steer_cmd, signal = self._lane_assist(steer, signal, old_lane, curvature)
            steering = "angle"
        ego, kin = step_ego(
            ego_old, steer_cmd, throttle, brake, gear,
            curvature, self._grid("slope", ego_old.s),
            road["friction"], accel_noise, self.ego_params, dt, steering,
        )
        self.ego, self.kinematics = ego, kin

        if self.peds.s.shape[1] > 0:
            self.peds = pedestrians.step(
                self.peds, half_width, road["crosswalk_s"], ego.s, cfg.jaywalk_prob,
                self._vehicle_boxes(), step_noise, dt,
            )
        if self.traffic.s.shape[1] > 0:
            self.traffic = traffic.step(
                self.traffic, self._obstacles(), lanes, width,
                self._grid("solid", self.traffic.s), ego.s, self.steps, step_noise, dt,
            )

        self._memo.clear()  # the world moved
        hit_vehicle, hit_person = self._ego_collides()
        collision = hit_vehicle | hit_person
        offroad = (np.abs(ego.d) > half_width) | (ego.s < 0.0)
        goal = ego.s >= road["goal_s"]
        new_lane = lane_of(ego.d, lanes, width)
        crosswalk_distance, next_occupied, in_occupied = self._crosswalk_status()
        lane_offset = (ego.d - lane_center(new_lane, lanes, width)) / (0.5 * width)
        headway, time_to_collision = self._following()
        max_progress = (np.full(self.num_envs, np.inf) if cfg.progress_speed_cap is None
                        else cfg.progress_speed_cap * road["speed_limit"] * dt)
        events = reward.Events(
            progress=kin.progress, max_progress=max_progress, goal=goal,
            collision=collision, offroad=offroad,
            speed=ego.speed, speed_limit=road["speed_limit"], old_lane=old_lane,
            new_lane=new_lane, signal=signal, solid_here=self._solid_here(),
            in_occupied_crosswalk=in_occupied,
            occupied_crosswalk_gap=np.where(next_occupied, crosswalk_distance, np.inf),
            headway=headway,
            time_to_collision=time_to_collision, lane_offset=lane_offset,
            jerk=(kin.accel - prev_accel) / dt,
            lateral_accel=kin.lateral_accel, steer_rate=kin.steer_rate,
            max_steer_rate=self.ego_params.max_steer_rate,
        )
        raw = reward.terms(events)
        contributions = reward.weighted(raw, cfg.reward)
        violations, self.violating = reward.violations(raw, self.violating)
        rewards = reward.total(contributions)

        self.prev_controls = np.stack([steer, throttle, brake], axis=1)
        self.signal = signal
        self.steps = self.steps + 1
        self.episode_return = self.episode_return + rewards
        terminated = collision | offroad | goal
        truncated = (self.steps >= cfg.max_episode_steps) & ~terminated
        info = {f"reward/{name}": value for name, value in contributions.items()}
        info.update({f"sum/violation/{name}": count for name, count in violations.items()})
        info["sum/distance"] = np.abs(kin.progress)
        info.update(self._collision_kinds(hit_vehicle, hit_person, lane_offset))
        info.update(collision=collision, offroad=offroad, goal_reached=goal,
                    is_success=goal.copy(), speed=ego.speed.copy(),
                    episode_return=self.episode_return.copy(),
                    episode_length=self.steps.copy())
        return rewards, terminated, truncated, info

    def _lane_assist(self, nudge: np.ndarray, requested: np.ndarray, lane: np.ndarray,
                     curvature: np.ndarray):
        """Lane assist (`driving.steering="lane_assist"`) on the current state, the ego in
        `lane` [N] on a road of `curvature` [N] 1/m: returns the [N] wheel-angle command
        ("angle" steering) that holds the target lane's centre moved by nudge [N] in [-1, 1]
        times `lane_assist_nudge` lane widths, and the [N] turn signal shown. requested [N]:
        the turn signal the policy asks for. A request held for
        `lane_change_signal_steps` steps in a row while the car is in its target lane moves
        the target one lane that way, unless that is off the road or across a solid divider
        (and, with `lane_assist_gap_time`, not before that lane is clear); while the car's
        centre is not yet in the target lane the signal shows the way it is going, whatever
        is requested: a change, once committed, is made whole."""
        road, ego = self.road, self.ego
        lanes, width = road["num_lanes"], road["lane_width"]
        asking = (lane == self.assist_lane) & (requested != reward.SIGNAL_NONE)
        # self.signal is last step's; a request counts on while it stays the same
        held = np.where(requested == self.signal, self.assist_hold, 0)
        self.assist_hold = np.where(asking, held + 1, 0)
        target = lane + np.where(requested == reward.SIGNAL_LEFT, 1, -1)
        go = ((self.assist_hold >= self.config.lane_change_signal_steps)
              & (target >= 0) & (target < lanes) & ~self._solid_here())
        if self.config.lane_assist_gap_time > 0.0:
            go &= self._lane_clear(target, lanes, width)
        self.assist_lane = np.where(go, target, self.assist_lane)
        self.assist_hold = np.where(go, 0, self.assist_hold)
        going = np.where(self.assist_lane > lane, reward.SIGNAL_LEFT, reward.SIGNAL_RIGHT)
        shown = np.where(self.assist_lane != lane, going, requested)
        nudge_metres = nudge * self.config.lane_assist_nudge * width
        line = lane_center(self.assist_lane, lanes, width) + nudge_metres
        steer = lane_keeping_steer(ego.d - line, ego.heading, ego.speed, curvature,
                                   self.ego_params)
        return steer, shown

    def _lane_clear(self, lane: np.ndarray, lanes: np.ndarray, width: np.ndarray):
        """[N] bool: no vehicle overlapping `lane` [N] (of `lanes` [N] lanes `width` [N] m
        wide) is within an ego length of the ego, bumper to bumper, plus the speed at which
        the two close in times `lane_assist_gap_time`, ahead or behind."""
        t, ego, ego_length = self.traffic, self.ego, self.ego_params.length
        center = lane_center(lane, lanes, width)[:, None]
        in_lane = t.active & (np.abs(t.d - center) < 0.5 * (width[:, None] + t.width))
        ahead = t.s >= ego.s[:, None]
        bumper_gap = np.abs(t.s - ego.s[:, None]) - 0.5 * (t.length + ego_length)
        # the ego closes in on a vehicle ahead at its speed over the other's, and one
        # behind closes in at its speed over the ego's
        closing = np.where(ahead, 1.0, -1.0) * (ego.speed[:, None] - t.speed)
        needed = ego_length + np.maximum(closing, 0.0) * self.config.lane_assist_gap_time
        return ~np.any(in_lane & (bumper_gap < needed), axis=1)

    def _vehicle_boxes(self) -> dict[str, np.ndarray]:
        """Road-aligned boxes of the ego (with its rotated extent) and traffic, [N, 1 + M]."""
        ego, params, t = self.ego, self.ego_params, self.traffic
        cos, sin = np.abs(np.cos(ego.heading)), np.abs(np.sin(ego.heading))
        hl, hw = 0.5 * params.length, 0.5 * params.width
        return {
            "s": np.concatenate([ego.s[:, None], t.s], axis=1),
            "d": np.concatenate([ego.d[:, None], t.d], axis=1),
            "half_length": np.concatenate([(hl * cos + hw * sin)[:, None], 0.5 * t.length], 1),
            "half_width": np.concatenate([(hl * sin + hw * cos)[:, None], 0.5 * t.width], 1),
            "speed": np.concatenate([ego.speed[:, None], t.speed], axis=1),
            "valid": np.concatenate([np.ones((self.num_envs, 1), bool), t.active], axis=1),
        }

    def _following(self) -> tuple[np.ndarray, np.ndarray]:
        """[N] time headway (s) and [N] time to collision (s) of the ego to the vehicles
        ahead (`_following`)."""
        return self._vehicles_ahead()[:2]

    def _vehicles_ahead(self) -> tuple[np.ndarray, ...]:
        """[N] headway, time to collision, the nearest's gap and closing speed
        (`_following`), computed once per state: the reward and the radar both read them."""
        def compute():
            out = tuple(np.empty(self.num_envs) for _ in range(4))
            t = self.traffic
            _following(self.ego.s, self.ego.d, self.ego.speed, self.ego_params.length,
                       self.ego_params.width, t.s, t.d, t.length, t.width, t.speed, t.active,
                       *out)
            return out
        return self._memoised("vehicles_ahead", compute)

    def _obstacles(self) -> dict[str, np.ndarray]:
        """Non-traffic objects traffic must not run into: the ego (in the lanes its body
        covers) and pedestrians on the road (in their lane and the lane they walk into).
        Columns [N, 2 + 2P]: ego twice, pedestrians [P], pedestrians again [P]."""
        n, p = self.num_envs, self.peds.s.shape[1]
        columns = {k: np.empty((n, 2 + 2 * p), dtype) for k, dtype in _OBSTACLE_FIELDS}
        _obstacle_columns(
            self.ego.s, self.ego.d, self.ego.speed, self.ego_params.length,
            self.ego_params.width, self.peds.s, self.peds.d, self.peds.side, self.peds.phase,
            self.half_width, self.road["num_lanes"], self.road["lane_width"],
            *columns.values(),
        )
        return columns

    def _ego_collides(self) -> tuple[np.ndarray, np.ndarray]:
        """([N] bool, [N] bool): the ego's box overlaps a vehicle; a pedestrian."""
        ego, params, t, p = self.ego, self.ego_params, self.traffic, self.peds
        cos_heading, sin_heading = self._traffic_cos_sin()
        vehicles = ObjectBoxes(t.s, t.d, cos_heading, sin_heading, 0.5 * t.length,
                               0.5 * t.width, t.active)
        people = self._pedestrian_boxes._replace(s=p.s, d=p.d)
        half = (0.5 * params.length, 0.5 * params.width)
        return (ego_hits_any(ego.s, ego.d, ego.heading, half, [vehicles]),
                ego_hits_any(ego.s, ego.d, ego.heading, half, [people]))

    def _collision_kinds(self, hit_vehicle: np.ndarray, hit_person: np.ndarray,
                         lane_offset: np.ndarray) -> dict[str, np.ndarray]:
        """[N] bool flags saying what a collision was (all False without one).

        `collision/pedestrian`; with a vehicle only (the nearest active one, by centre
        distance, is taken as the one hit), `collision/front` where its centre is ahead by
        at least half the two half lengths (the ego ran into it), `collision/rear` likewise
        behind (hit from behind), `collision/side` otherwise; `collision/between_lanes`
        where the ego's centre was more than a quarter lane from its lane's centre line
        (|lane_offset| > 0.5).
        """
        kinds = {f"collision/{k}": np.zeros(self.num_envs, bool) for k in ("front", "rear", "side")}
        kinds["collision/pedestrian"] = hit_person
        kinds["collision/between_lanes"] = (hit_vehicle | hit_person) & (np.abs(lane_offset) > 0.5)
        ids = np.flatnonzero(hit_vehicle & ~hit_person)
        if ids.size:
            t, ego = self.traffic, self.ego
            ds, dd = t.s[ids] - ego.s[ids, None], t.d[ids] - ego.d[ids, None]
            nearest = np.argmin(np.where(t.active[ids], ds * ds + dd * dd, np.inf), axis=1)
            ds_hit = ds[np.arange(ids.size), nearest]
            lengthwise = 0.25 * (self.ego_params.length + t.length[ids, nearest])
            kinds["collision/front"][ids] = ds_hit >= lengthwise
            kinds["collision/rear"][ids] = ds_hit <= -lengthwise
            kinds["collision/side"][ids] = np.abs(ds_hit) < lengthwise
        return kinds

    # ------------------------------------------------------------------------- observation
    def observe(self) -> dict[str, np.ndarray]:
        """Fresh observation arrays: camera [N, H, W, 5] uint8, lidar [N, R] float32,
        state [N, len(STATE_FIELDS)] float32 (keys switched off in config are absent)."""
        self._require_started()
        cfg = self.config
        obs = {}
        if cfg.camera:
            scene = self._scene_for(self.camera_geometry)
            if self._camera_scratch is None:
                size = self.config.camera_size
                self._camera_scratch = camera_mod.CodeScratch((self.num_envs, size, size))
            obs["camera"] = camera_mod.rasterise(
                scene, self.camera_geometry, scratch=self._camera_scratch
            )
        if cfg.lidar:
            obs["lidar"] = self._lidar()
        if cfg.state:
            obs["state"] = self._state_vector()
        if cfg.radar:
            obs["radar"] = self._radar()
        return obs

    def _scene_for(self, geometry: camera_mod.CameraGeometry) -> camera_mod.Scene:
        """What a camera with this pixel grid sees of the current state."""
        rows_s = self.ego.s[:, None] + geometry.row_offsets()[None, :]
        return camera_mod.Scene(
            ego_s=self.ego.s, ego_d=self.ego.d, ego_heading=self.ego.heading,
            ego_half=(0.5 * self.ego_params.length, 0.5 * self.ego_params.width),
            half_width=self.half_width, num_lanes=self.road["num_lanes"],
            lane_width=self.road["lane_width"], goal_s=self.road["goal_s"],
            solid_rows=self._grid("solid", rows_s), crosswalk_s=self.road["crosswalk_s"],
            traffic_s=self.traffic.s, traffic_d=self.traffic.d,
            traffic_half_length=0.5 * self.traffic.length,
            traffic_half_width=0.5 * self.traffic.width, traffic_active=self.traffic.active,
            ped_s=self.peds.s, ped_d=self.peds.d,
        )

    def _lidar(self) -> np.ndarray:
        """[N, R] float32 lidar readings of the current state."""
        ego, t, p = self.ego, self.traffic, self.peds
        cos_heading, sin_heading = self._traffic_cos_sin()
        vehicles = np.stack([t.s, t.d, cos_heading, sin_heading, 0.5 * t.length, 0.5 * t.width])
        sensor_noise = self._range_noise(_STREAM_LIDAR, self.config.num_lidar_rays)
        return lidar_mod.scan_nearest(ego.s, ego.d, ego.heading, self.half_width, vehicles,
                                      t.active, p.s, p.d, 0.5 * pedestrians.SIZE,
                                      self.road["sensor_range"], sensor_noise,
                                      self.config.lidar_max_range)

    def _range_noise(self, stream: int, count: int) -> np.ndarray:
        """[N, count] metres of range-sensor noise this step (the episode's `sensor_noise`
        times `lidar_max_range`), shared by the lidar and the radar."""
        noise_std = self.road["sensor_noise"] * self.config.lidar_max_range
        if not noise_std.any():  # noiseless sensors (e.g. the easy preset) skip the draw
            return np.zeros((self.num_envs, count))
        sensor_noise = noise.normal(self.road["noise_key"], self.steps, stream, count)
        sensor_noise *= noise_std[:, None]
        return sensor_noise

    def _radar(self) -> np.ndarray:
        """[N, 2] float32 radar readings (`spaces.RADAR_FIELDS`) of the current state: the
        lead vehicle's gap with the lidar's range noise, seen within the episode's
        visibility like the lidar's returns."""
        _, _, gap, closing = self._vehicles_ahead()
        gap = gap + self._range_noise(_STREAM_RADAR, 1)[:, 0]
        seen = gap <= self.road["sensor_range"]
        readings = np.stack([
            np.where(seen, np.clip(gap / self.config.lidar_max_range, 0.0, 1.0), 1.0),
            np.where(seen, np.clip(closing / spaces.RADAR_SPEED_SCALE, -1.0, 1.0), 0.0),
        ], axis=1)
        return readings.astype(np.float32)

    def _row_offsets(self, width: int) -> np.ndarray:
        """[N, 1] flat offset of each row of an [N, width] array."""
        return self._rows * width

    def _state_vector(self) -> np.ndarray:
        """[N, len(STATE_FIELDS)] float32 state features, in STATE_FIELDS order."""
        ego, road, kin = self.ego, self.road, self.kinematics
        crosswalk_distance, crosswalk_occupied, _ = self._crosswalk_status()
        return state_features.features(
            np.stack([ego.s, ego.d, ego.heading, ego.speed, ego.steer]), ego.gear, self.signal,
            kin.yaw_rate, kin.accel, self.prev_controls, self.half_width,
            np.stack([road["lane_width"], road["speed_limit"], road["goal_s"]]),
            road["num_lanes"], road["condition"], road["curvature"], crosswalk_distance,
            crosswalk_occupied, self._solid_here(), self.config.route_length,
            self.ego_params.max_steer,
        )
