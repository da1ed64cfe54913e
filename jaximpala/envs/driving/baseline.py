"""A scripted baseline driver: lane keeping, IDM speed control and signalled lane changes.

It reads only the observation (`state` and `lidar` must be on), so anyone can run it as a
policy on a batch of N observations: `BaselineDriver(config, num_envs).act(obs)`.

- Lane keeping: curvature feed-forward plus feedback on heading error and lateral offset from
  the target lane centre (a Stanley-style law).
- Speed: the Intelligent Driver Model towards min(0.9 x limit, the curve speed for the road's
  friction class, the speed that stops before an occupied crosswalk), following the nearest
  lidar return inside the target lane; the leader's closing speed comes from the change in
  that gap between steps.
- Lane changes: when the leader is slower than wanted and an adjacent lane has clearly more
  room ahead and at least 15 m behind, the driver signals for 1 s, then moves over with the
  signal on (never across a solid divider).
"""

from __future__ import annotations

import numpy as np

from jaximpala.envs.driving.config import DrivingConfig, G
from jaximpala.envs.driving.dynamics import EgoParams, lane_keeping_steer
from jaximpala.envs.driving.lidar import ray_angles
from jaximpala.envs.driving.reward import SIGNAL_LEFT, SIGNAL_RIGHT
from jaximpala.envs.driving.spaces import GEAR_DRIVE, STATE_FIELDS

_F = {name: i for i, name in enumerate(STATE_FIELDS)}
CLASS_FRICTION = np.array([0.8, 0.4, 0.1])  # a cautious mu for dry, wet, icy


class BaselineDriver:
    """Scripted policy for N envs. Call `reset(mask)` for envs that start a new episode."""

    def __init__(self, config: DrivingConfig, num_envs: int, ego: EgoParams | None = None):
        if not (config.state and config.lidar):
            raise ValueError("the baseline driver needs driving.state and driving.lidar on")
        self.config = config
        self.ego = ego or EgoParams()
        self.num_envs = num_envs
        self.angles = ray_angles(config.num_lidar_rays)
        self.target_lane = np.full(num_envs, -1)
        self.signal = np.zeros(num_envs, np.int64)
        self.countdown = np.zeros(num_envs, np.int64)
        self.prev_gap = np.full(num_envs, np.inf)

    def reset(self, mask: np.ndarray | None = None) -> None:
        mask = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
        self.target_lane[mask] = -1
        self.signal[mask] = 0
        self.countdown[mask] = 0
        self.prev_gap[mask] = np.inf

    def act(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Actions for a batch: obs['state'] [N, S], obs['lidar'] [N, R] ->
        {'continuous': [N, 3] float32 ([N, 2] with combined pedals), 'discrete': [N, 2]
        int64}."""
        state = np.asarray(obs["state"], np.float64)
        f = lambda name: state[:, _F[name]]
        num_lanes = np.rint(f("num_lanes") * 4).astype(np.int64)
        lane_width = f("lane_width") * 4.0
        half_width = 0.5 * num_lanes * lane_width
        lane = np.rint(f("lane_index") * np.maximum(num_lanes - 1, 1)).astype(np.int64)
        self.target_lane = np.where(self.target_lane < 0, lane, self.target_lane)
        d = f("road_offset") * half_width
        heading, speed = f("heading_error"), f("speed") * 30.0
        friction = CLASS_FRICTION[np.argmax(state[:, [_F["friction_dry"], _F["friction_wet"],
                                                      _F["friction_icy"]]], axis=1)]

        hit_x, hit_y = self._lidar_points(obs["lidar"], d, heading, half_width)
        gaps = {k: self._lane_gaps(hit_x, hit_y, lane + k, num_lanes, lane_width, half_width)
                for k in (-1, 0, 1)}
        # no lane changes across solid dividers, nor on ice (too little lateral grip)
        no_change = (f("solid_divider") > 0.5) | (f("friction_icy") > 0.5)
        self._maybe_change_lane(lane, num_lanes, gaps, speed, f("speed_limit") * 30.0,
                                no_change)

        target_center = (self.target_lane + 0.5) * lane_width - half_width
        if self.config.steering == "lane_assist":
            # the car holds the lane centre itself and changes lanes on the signal, which
            # this driver gives exactly as long as the simulator asks for
            steer = np.zeros(self.num_envs)
        else:
            steer = lane_keeping_steer(d - target_center, heading, speed,
                                       f("curvature") / 50.0, self.ego)
            if self.config.steering == "rate":
                steer = self._rate_toward(steer, f("steer_angle"))
        front, _ = self._lane_gaps(hit_x, hit_y, self.target_lane, num_lanes, lane_width,
                                   half_width)
        # Mid-change the car still straddles its old lane: respect both leaders.
        front = np.minimum(front, np.where(self.target_lane != lane, gaps[0][0], np.inf))
        accel = self._speed_control(speed, front, friction, state, f)
        throttle = np.clip(accel / self.ego.max_drive_accel, 0.0, 1.0)
        brake = np.clip(-accel / 8.0, 0.0, 1.0)
        pedals = [throttle, brake] if self.config.pedals == "separate" else [throttle - brake]
        continuous = np.stack([steer, *pedals], axis=1).astype(np.float32)
        gear = ([] if self.config.gearbox == "automatic"
                else [np.full(self.num_envs, GEAR_DRIVE)])
        discrete = np.stack([*gear, self.signal], axis=1).astype(np.int64)
        return {"continuous": continuous, "discrete": discrete}

    def _lidar_points(self, lidar, d, heading, half_width):
        """[N, R] road-frame positions (ahead, lateral) of lidar returns that are objects.
        Returns that are (noisy) hits on the road edge or the range ceiling are dropped
        (their ahead coordinate becomes +inf)."""
        distance = np.asarray(lidar, np.float64) * self.config.lidar_max_range
        direction = heading[:, None] + self.angles[None, :]
        sin = np.sin(direction)
        x = distance * np.cos(direction)
        y = d[:, None] + distance * sin
        edge_offset = np.where(sin > 0, (half_width - d)[:, None], (-half_width - d)[:, None])
        edge_distance = np.abs(edge_offset / np.where(np.abs(sin) < 1e-9, 1e-9, sin))
        short_of_edge = distance < edge_distance - np.maximum(2.5, 0.15 * edge_distance)
        is_object = (
            short_of_edge
            & (np.abs(y) < half_width[:, None] - 0.5)
            # noisy readings at the visibility ceiling are not objects either
            & (distance < distance.max(axis=1, keepdims=True) - 3.0)
        )
        return np.where(is_object, x, np.inf), y

    def _lane_gaps(self, hit_x, hit_y, lane, num_lanes, lane_width, half_width):
        """Room ahead and behind ([N] metres, bumper to return) in `lane` ([N]); -inf ahead
        for lanes that do not exist."""
        center = (lane + 0.5) * lane_width - half_width
        in_lane = np.abs(hit_y - center[:, None]) < 0.5 * lane_width[:, None] + 0.3
        half_length = 0.5 * self.ego.length
        ahead = np.where(in_lane & (hit_x > 0) & np.isfinite(hit_x), hit_x, np.inf).min(1)
        behind = np.where(in_lane & (hit_x < 0), -hit_x, np.inf).min(1)
        exists = (lane >= 0) & (lane < num_lanes)
        return (np.where(exists, ahead - half_length, -np.inf),
                np.where(exists, behind - half_length, -np.inf))

    def _maybe_change_lane(self, lane, num_lanes, gaps, speed, limit, forbidden):
        front, _ = gaps[0]
        arrived = (self.target_lane == lane) & (self.countdown == 0)
        self.signal = np.where(arrived, 0, self.signal)
        free = arrived & (front < 40.0) & (speed < 0.8 * limit) & ~forbidden
        # A car behind in the target lane may come at up to the limit: the slower we are,
        # the more room we need behind.
        room_behind = 15.0 + 1.5 * np.maximum(limit - speed, 0.0)
        for k, signal in ((1, SIGNAL_LEFT), (-1, SIGNAL_RIGHT)):
            ahead, behind = gaps[k]
            better = free & (ahead > front + 15.0) & (behind > room_behind)
            self.signal = np.where(better, signal, self.signal)
            self.countdown = np.where(better, self.config.lane_change_signal_steps,
                                     self.countdown)
            free &= ~better
        waiting = self.countdown > 0
        self.countdown = np.maximum(self.countdown - 1, 0)
        go = waiting & (self.countdown == 0)
        step = np.where(self.signal == SIGNAL_LEFT, 1, -1)
        self.target_lane = np.where(go, np.clip(lane + step, 0, num_lanes - 1),
                                    self.target_lane)

    def _rate_toward(self, target, current):
        """[N] turn-rate command in [-1, 1] that moves the wheel from `current` to `target`
        (both [N], fractions of max_steer), as far as one step's turn allows."""
        max_delta = self.ego.max_steer_rate * self.config.dt / self.ego.max_steer
        return np.clip((target - current) / max_delta, -1.0, 1.0)

    def _speed_control(self, speed, front, friction, state, f):
        grip = friction * G
        comfort = np.minimum(3.0, 0.5 * grip)
        # Corner at half the friction limit; the bend 30 m ahead must be reachable by
        # comfortable braking (this matters on ice, where braking takes long).
        curve_speed = lambda k: np.sqrt(0.5 * grip / np.maximum(np.abs(k) / 50.0, 1e-6))
        ahead = np.sqrt(curve_speed(f("curvature_ahead")) ** 2 + 2.0 * comfort * 25.0)
        desired = np.minimum(np.minimum(0.9 * f("speed_limit") * 30.0,
                                        curve_speed(f("curvature"))), ahead)
        crosswalk = np.where(f("crosswalk_distance") < 1.0, f("crosswalk_distance") * 100, np.inf)
        occupied = f("crosswalk_occupied") > 0.5
        stop_gap = np.where(occupied, np.maximum(crosswalk - 1.0, 0.0), np.inf)
        gap = np.minimum(front, stop_gap)
        seen = np.isfinite(self.prev_gap) & np.isfinite(gap)
        closing = np.where(seen, (np.where(seen, self.prev_gap, 0.0) - np.where(seen, gap, 0.0))
                           / self.config.dt, 0.0)
        closing = np.where(occupied & (stop_gap <= front), speed, np.clip(closing, -5, 15))
        self.prev_gap = gap
        # On slippery roads keep a longer time gap and accelerate gently.
        headway = 1.5 * np.maximum(1.0, 0.5 / friction) ** 0.5
        max_accel = np.minimum(1.5, 0.5 * grip)
        desired_gap = 3.0 + np.maximum(
            0.0, speed * headway + speed * closing / (2.0 * np.sqrt(max_accel * comfort))
        )
        free = 1.0 - (speed / np.maximum(desired, 0.5)) ** 4
        interaction = (desired_gap / np.maximum(gap, 0.1)) ** 2
        return np.clip(max_accel * (free - interaction), -grip, 3.0)


def evaluate(preset_name: str, episodes: int, seed: int = 0, num_envs: int = 16,
             **overrides) -> dict:
    """Run the baseline on `episodes` episodes of a preset (with DrivingConfig `overrides`)
    with the native vector env.

    Returns success rate, mean return, mean length, and collision / off-road rates."""
    from jaximpala.envs.driving.env import DrivingVectorEnv

    env = DrivingVectorEnv(num_envs=num_envs, preset=preset_name, **overrides)
    driver = BaselineDriver(env.config, num_envs)
    obs, _ = env.reset(seed=seed)
    finished = {"return": [], "length": [], "success": [], "collision": [], "offroad": []}
    autoreset = np.zeros(num_envs, bool)
    while len(finished["return"]) < episodes:
        obs, _, terminated, truncated, info = env.step(driver.act(obs))
        driver.reset(autoreset)  # these slots have just started a new episode
        done = terminated | truncated
        for i in np.flatnonzero(done):
            finished["return"].append(float(info["episode_return"][i]))
            finished["length"].append(int(info["episode_length"][i]))
            finished["success"].append(bool(info["goal_reached"][i]))
            finished["collision"].append(bool(info["collision"][i]))
            finished["offroad"].append(bool(info["offroad"][i]))
        autoreset = done
    take = {k: np.asarray(v[:episodes]) for k, v in finished.items()}
    return {
        "preset": preset_name,
        "episodes": episodes,
        "success_rate": float(take["success"].mean()),
        "mean_return": float(take["return"].mean()),
        "mean_length": float(take["length"].mean()),
        "collision_rate": float(take["collision"].mean()),
        "offroad_rate": float(take["offroad"].mean()),
    }
