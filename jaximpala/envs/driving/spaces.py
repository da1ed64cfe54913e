"""Observation and action spaces, action validation, and the `state` feature layout.

Actions: `continuous` Box(3) = (steering in [-1, 1], throttle in [0, 1], brake in [0, 1]),
or with `driving.pedals="combined"` Box(2) = (steering in [-1, 1], pedal in [-1, 1]: throttle
when positive, brake when negative); steering is the target wheel angle, the wheel's turn
rate, or with lane assist the held line's offset within the lane, as `driving.steering` says;
`discrete` MultiDiscrete([3, 3]) = (gear: 0 reverse, 1 neutral, 2 drive; turn signal:
0 off, 1 left, 2 right), or with `driving.gearbox="automatic"` MultiDiscrete([3]) = (turn
signal,) and the car always in drive. Out-of-range continuous values are clipped to the box and
out-of-range discrete values are clipped to the valid range; NaN or inf raise ValueError.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from jaximpala.envs.driving.camera import CHANNELS
from jaximpala.envs.driving.config import DrivingConfig

STATE_FIELDS = (
    "speed",  # m/s / 30, signed
    "heading_error",  # rad, car vs road tangent
    "lane_offset",  # from the current lane centre, in lane widths
    "road_offset",  # from the road centre, in road half widths
    "yaw_rate",  # rad/s
    "prev_steer", "prev_throttle", "prev_brake",  # previous continuous controls
    "gear_reverse", "gear_neutral", "gear_drive",
    "signal_off", "signal_left", "signal_right",
    "goal_distance",  # metres to go / route length
    "speed_limit",  # m/s / 30
    "friction_dry", "friction_wet", "friction_icy",
    "curvature",  # road curvature here, 1/m * 50
    "curvature_ahead",  # road curvature 30 m ahead, 1/m * 50
    "lane_index",  # 0 (rightmost) .. 1 (leftmost)
    "num_lanes",  # / 4
    "lane_width",  # m / 4
    "crosswalk_distance",  # metres to the next crosswalk / 100, capped at 1
    "crosswalk_occupied",  # 1 if a pedestrian is crossing it
    "steer_angle",  # front wheel angle / max
    "accel",  # longitudinal acceleration / 10 m/s^2
    "solid_divider",  # 1 where lane dividers are solid here
)


# continuous action box per `driving.pedals`
_BOUNDS = {"separate": (np.array([-1.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])),
           "combined": (np.array([-1.0, -1.0]), np.array([1.0, 1.0]))}
STATE_BOUND = 10.0  # state features are scaled to O(1) and clipped to +-STATE_BOUND
RADAR_FIELDS = (
    "lead_gap",  # bumper-to-bumper metres / lidar_max_range; 1: none within sensor range
    "closing_speed",  # (ego speed - lead speed) / RADAR_SPEED_SCALE, in [-1, 1]; 0: none
)
RADAR_SPEED_SCALE = 30.0  # m/s


def state_size() -> int:
    return len(STATE_FIELDS)


def observation_space(config: DrivingConfig) -> gym.spaces.Dict:
    spaces = {}
    if config.camera:
        shape = (config.camera_size, config.camera_size, len(CHANNELS))
        spaces["camera"] = gym.spaces.Box(0, 255, shape, np.uint8)
    if config.lidar:
        spaces["lidar"] = gym.spaces.Box(0.0, 1.0, (config.num_lidar_rays,), np.float32)
    if config.state:
        spaces["state"] = gym.spaces.Box(
            -STATE_BOUND, STATE_BOUND, (state_size(),), np.float32
        )
    if config.radar:
        spaces["radar"] = gym.spaces.Box(np.array([0.0, -1.0], np.float32),
                                         np.array([1.0, 1.0], np.float32), dtype=np.float32)
    return gym.spaces.Dict(spaces)


GEAR_DRIVE = 2
# the discrete action's components per `driving.gearbox`
_DISCRETE = {"manual": [3, 3], "automatic": [3]}


def action_space(pedals: str = "separate", gearbox: str = "manual") -> gym.spaces.Dict:
    low, high = _BOUNDS[pedals]
    return gym.spaces.Dict(
        {
            "continuous": gym.spaces.Box(low.astype(np.float32), high.astype(np.float32)),
            "discrete": gym.spaces.MultiDiscrete(_DISCRETE[gearbox]),
        }
    )


def parse_actions(action: dict, num_envs: int, pedals: str = "separate",
                  gearbox: str = "manual") -> tuple[np.ndarray, ...]:
    """Validate and clip a batched action dict: continuous [N, 3] ([N, 2] with combined
    pedals), discrete [N, 2] ([N, 1], the turn signal, with an automatic gearbox).

    Returns (steer, throttle, brake, gear, signal), each [N]."""
    if not isinstance(action, dict) or set(action) != {"continuous", "discrete"}:
        raise ValueError(
            "action must be a dict with keys 'continuous' and 'discrete', got "
            f"{type(action).__name__} {sorted(action) if isinstance(action, dict) else ''}"
        )
    continuous = np.asarray(action["continuous"], dtype=np.float64)
    discrete = np.asarray(action["discrete"])
    low, high = _BOUNDS[pedals]
    if continuous.shape != (num_envs, low.size):
        raise ValueError(f"action['continuous'] must have shape {(num_envs, low.size)} with "
                         f"{pedals} pedals, got {continuous.shape}")
    width = len(_DISCRETE[gearbox])
    if discrete.shape != (num_envs, width):
        raise ValueError(f"action['discrete'] must have shape {(num_envs, width)} with a "
                         f"{gearbox} gearbox, got {discrete.shape}")
    if not np.isfinite(continuous).all():
        raise ValueError(f"action['continuous'] must be finite, got {continuous.tolist()}")
    if discrete.dtype.kind == "f" and not np.isfinite(discrete).all():
        raise ValueError(f"action['discrete'] must be finite, got {discrete.tolist()}")
    # = np.clip to the box, in one call for all columns
    clipped = np.minimum(np.maximum(continuous, low), high)
    discrete = np.minimum(np.maximum(discrete.astype(np.int64), 0), 2)
    if pedals == "combined":
        pedal = clipped[:, 1]
        throttle, brake = np.maximum(pedal, 0.0), np.maximum(-pedal, 0.0)
    else:
        throttle, brake = clipped[:, 1], clipped[:, 2]
    if gearbox == "automatic":
        return clipped[:, 0], throttle, brake, np.full(num_envs, GEAR_DRIVE), discrete[:, 0]
    return clipped[:, 0], throttle, brake, discrete[:, 0], discrete[:, 1]
