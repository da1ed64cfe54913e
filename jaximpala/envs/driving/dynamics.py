"""Ego vehicle: a kinematic bicycle in road (Frenet) coordinates with tyre friction limits.

Position is (s, d): arc length along the road centre line and lateral offset (left positive);
`heading` is the angle between the car and the road tangent. Over one step the car moves along
an exact circular arc in the local road frame, which is then mapped back to (s, d) treating the
road as an arc of the local curvature - exact on straights and constant-curvature bends.

Tyre forces obey a friction circle of radius mu*g with longitudinal priority: drive and braking
take what they need (up to mu*g), cornering gets the rest, and a turn that asks for more
lateral acceleration than is left understeers (the path widens). Gears: reverse, neutral,
drive. Throttle pushes the car along the gear's direction; in drive the car cannot roll
backwards and in reverse it cannot roll forwards (hill hold); a shift into the opposite
direction is refused while moving faster than `shift_speed`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaximpala.envs.driving.config import G

GEAR_REVERSE, GEAR_NEUTRAL, GEAR_DRIVE = 0, 1, 2
GEAR_DIRECTION = np.array([-1.0, 0.0, 1.0])  # indexed by gear


@dataclass(frozen=True)
class EgoParams:
    wheelbase: float = 2.7
    length: float = 4.5
    width: float = 1.9
    max_steer: float = 0.6  # rad
    max_steer_rate: float = 1.0  # rad/s
    max_drive_accel: float = 3.5  # m/s^2 at full throttle in drive
    max_reverse_accel: float = 2.0
    max_brake: float = 10.0  # above mu*g on any surface: friction is the binding limit
    max_speed: float = 40.0
    max_reverse_speed: float = 5.0
    shift_speed: float = 0.5
    rolling_resistance: float = 0.1  # m/s^2
    drag: float = 4.0e-4  # 1/m: drag deceleration is drag * v^2

    @property
    def max_yaw_curvature(self) -> float:
        return float(np.tan(self.max_steer) / self.wheelbase)


@dataclass
class EgoState:
    """Batched ego state; every field is [N] float64 except `gear` ([N] int64)."""

    s: np.ndarray
    d: np.ndarray
    heading: np.ndarray
    speed: np.ndarray  # signed: negative when reversing
    steer: np.ndarray  # front wheel angle, rad
    gear: np.ndarray

    def copy(self) -> EgoState:
        return EgoState(*(getattr(self, f).copy() for f in self.__dataclass_fields__))


@dataclass
class Kinematics:
    """What happened during one step, for rewards and observations; each field [N]."""

    progress: np.ndarray  # metres moved along s
    accel: np.ndarray  # longitudinal acceleration, m/s^2
    lateral_accel: np.ndarray
    yaw_rate: np.ndarray
    steer_rate: np.ndarray


def shift_gear(gear: np.ndarray, requested: np.ndarray, speed: np.ndarray, shift_speed: float):
    """[N] gear after a shift request: refused into the opposite direction while moving."""
    direction = GEAR_DIRECTION[requested]
    allowed = (direction == 0) | (np.abs(speed) < shift_speed) | (direction * speed > 0)
    return np.where(allowed, requested, gear)


def frenet_displacement(d, dx, dy, curvature):
    """Map a displacement (dx along the road tangent, dy left of it) from a point at lateral
    offset d to (ds, new_d), treating the road as an arc of the given curvature. All [N]."""
    w = d + dy
    bent = np.abs(curvature) > 1e-9
    safe_k = np.where(bent, curvature, 1.0)
    ds = np.where(bent, np.arctan2(safe_k * dx, 1.0 - safe_k * w) / safe_k, dx)
    root = np.sqrt((curvature * dx) ** 2 + (1.0 - curvature * w) ** 2)
    new_d = (2.0 * w - curvature * (w * w + dx * dx)) / (1.0 + root)
    return ds, new_d


def steer_angle(steer: np.ndarray, steer_cmd: np.ndarray, params: EgoParams, dt: float,
                steering: str) -> np.ndarray:
    """[N] front wheel angle after one step from `steer` [N] under `steer_cmd` [N] in [-1, 1]."""
    max_delta = params.max_steer_rate * dt
    # np.minimum(np.maximum(.)): np.clip without its Python overhead, large on [N] arrays
    if steering == "rate":
        return np.minimum(np.maximum(steer + steer_cmd * max_delta, -params.max_steer),
                          params.max_steer)
    if steering != "angle":
        raise ValueError(f"steering must be 'angle' or 'rate', got {steering!r}")
    delta = steer_cmd * params.max_steer - steer
    return steer + np.minimum(np.maximum(delta, -max_delta), max_delta)


def lane_keeping_steer(offset: np.ndarray, heading: np.ndarray, speed: np.ndarray,
                       curvature: np.ndarray, params: EgoParams) -> np.ndarray:
    """[N] target wheel angle / max_steer in [-1, 1] that holds a line: curvature feed-forward
    plus feedback on the heading error and on the lateral offset from the line (a
    Stanley-style law; Thrun et al. 2006, "Stanley: the robot that won the DARPA Grand
    Challenge"). offset [N] m, left positive, of the car from the line; heading [N] rad
    from the road tangent; speed [N] m/s; curvature [N] 1/m of the road here."""
    feed_forward = np.arctan(params.wheelbase * curvature)
    correction = -heading - np.arctan(0.6 * offset / (np.abs(speed) + 2.0))
    return np.clip((feed_forward + correction) / params.max_steer, -1.0, 1.0)


def step_ego(
    ego: EgoState,
    steer_cmd: np.ndarray,
    throttle: np.ndarray,
    brake: np.ndarray,
    gear_cmd: np.ndarray,
    road_curvature: np.ndarray,
    road_slope: np.ndarray,
    friction: np.ndarray,
    accel_noise: np.ndarray,
    params: EgoParams,
    dt: float,
    steering: str = "angle",
) -> tuple[EgoState, Kinematics]:
    """Advance the ego one step. Controls are [N] and already clipped: steer_cmd in [-1, 1],
    throttle and brake in [0, 1], gear_cmd in {0, 1, 2}. Road terms are [N], sampled at ego.s;
    accel_noise [N] m/s^2 models terrain roughness. `steering` says what steer_cmd sets
    ("angle": the target wheel angle / max_steer; "rate": the wheel's turn rate /
    max_steer_rate). Returns the new state and its Kinematics."""
    gear = shift_gear(ego.gear, gear_cmd, ego.speed, params.shift_speed)
    direction = GEAR_DIRECTION[gear]
    steer = steer_angle(ego.steer, steer_cmd, params, dt, steering)

    grip = friction * G
    drive_accel = np.where(direction < 0, params.max_reverse_accel, params.max_drive_accel)
    traction = np.minimum(throttle * drive_accel, grip) * direction
    gravity = -G * road_slope / np.sqrt(1.0 + road_slope * road_slope)
    free_speed = ego.speed + (traction + gravity + accel_noise) * dt
    braking = np.minimum(brake * params.max_brake, grip)
    resist = braking + params.rolling_resistance + params.drag * free_speed * free_speed
    # Braking and resistance oppose the motion and can stop the car but never reverse it.
    speed = np.sign(free_speed) * np.maximum(np.abs(free_speed) - resist * dt, 0.0)
    speed = np.where(direction > 0, np.maximum(speed, 0.0), speed)
    speed = np.where(direction < 0, np.minimum(speed, 0.0), speed)
    speed = np.minimum(np.maximum(speed, -params.max_reverse_speed), params.max_speed)

    mean_speed = 0.5 * (ego.speed + speed)
    accel = (speed - ego.speed) / dt
    tyre_long = np.minimum(np.abs(traction) + braking, grip)
    lateral_grip = np.sqrt(np.maximum(grip * grip - tyre_long * tyre_long, 0.0))
    wanted_curvature = np.tan(steer) / params.wheelbase
    speed_sq = np.maximum(mean_speed * mean_speed, 1e-9)
    max_curvature = lateral_grip / speed_sq
    # understeer
    curvature = np.minimum(np.maximum(wanted_curvature, -max_curvature), max_curvature)
    yaw_rate = mean_speed * curvature

    distance = mean_speed * dt
    turn = yaw_rate * dt
    chord = distance * np.sinc(turn / (2.0 * np.pi))  # exact arc: chord = L*sin(t/2)/(t/2)
    mid_heading = ego.heading + 0.5 * turn
    ds, d = frenet_displacement(
        ego.d, chord * np.cos(mid_heading), chord * np.sin(mid_heading), road_curvature
    )
    heading = ego.heading + turn - road_curvature * ds
    heading = (heading + np.pi) % (2.0 * np.pi) - np.pi

    new = EgoState(s=ego.s + ds, d=d, heading=heading, speed=speed, steer=steer, gear=gear)
    kinematics = Kinematics(
        progress=ds,
        accel=accel,
        lateral_accel=mean_speed * yaw_rate,
        yaw_rate=yaw_rate,
        steer_rate=(steer - ego.steer) / dt,
    )
    return new, kinematics
