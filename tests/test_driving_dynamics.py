import numpy as np
import pytest

from jaximpala.envs.driving.config import G
from jaximpala.envs.driving.dynamics import (
    GEAR_DRIVE,
    GEAR_NEUTRAL,
    GEAR_REVERSE,
    EgoParams,
    EgoState,
    frenet_displacement,
    lane_keeping_steer,
    step_ego,
)

NO_RESISTANCE = EgoParams(rolling_resistance=0.0, drag=0.0)
DT = 0.1


def _state(speed=0.0, steer=0.0, gear=GEAR_DRIVE, heading=0.0, d=0.0):
    one = lambda x: np.array([float(x)])
    return EgoState(s=one(0.0), d=one(d), heading=one(heading), speed=one(speed),
                    steer=one(steer), gear=np.array([gear]))


def _step(state, steer=0.0, throttle=0.0, brake=0.0, gear=None, curvature=0.0, slope=0.0,
          friction=0.9, params=NO_RESISTANCE, steering="angle"):
    one = lambda x: np.array([float(x)])
    gear = state.gear if gear is None else np.array([gear])
    return step_ego(state, one(steer), one(throttle), one(brake), gear, one(curvature),
                    one(slope), one(friction), one(0.0), params, DT, steering)


def _stopping_distance(speed, friction):
    state, travelled = _state(speed), 0.0
    while state.speed[0] > 0:
        state, kin = _step(state, brake=1.0, friction=friction)
        travelled += kin.progress[0]
    return travelled


@pytest.mark.parametrize("friction", [0.9, 0.5, 0.15])
def test_stopping_distance_is_v_squared_over_two_mu_g(friction):
    # Full brakes (10 m/s^2) exceed mu*g on every surface, so friction sets the deceleration:
    # from 20 m/s, d = v^2 / (2 mu g): 22.65 m dry (0.9), 40.77 m wet (0.5), 135.9 m icy.
    exact = 20.0**2 / (2.0 * friction * G)
    # Trapezoidal integration overshoots by at most a*dt^2/2 in the final partial step.
    assert _stopping_distance(20.0, friction) == pytest.approx(exact, abs=friction * G * DT**2 / 2)


def test_ice_stops_six_times_longer_than_dry():
    assert _stopping_distance(20.0, 0.15) / _stopping_distance(20.0, 0.9) == pytest.approx(
        6.0, rel=0.01)


def test_turning_radius_is_wheelbase_over_tan_steer():
    params = NO_RESISTANCE
    radius = params.wheelbase / np.tan(params.max_steer)  # 2.7 / tan(0.6) = 3.947 m
    state = _state(speed=2.0, steer=params.max_steer, gear=GEAR_NEUTRAL)
    x, y = [0.0], [0.0]
    for _ in range(200):  # 40 m of path: more than one full circle
        state, _ = _step(state, steer=1.0)
        x.append(state.s[0])
        y.append(state.d[0])
    # On a straight road (s, d) are Cartesian; the car circles the point (0, R).
    distance_to_center = np.hypot(np.array(x), np.array(y) - radius)
    np.testing.assert_allclose(distance_to_center, radius, atol=1e-9)
    assert np.ptp(y) == pytest.approx(2 * radius, abs=0.05)


def test_understeer_at_the_friction_limit():
    # 15 m/s with full lock on ice: lateral grip mu*g = 1.47 m/s^2 caps the path curvature
    # at mu*g / v^2, a 152.9 m radius instead of the kinematic 3.95 m.
    state = _state(speed=15.0, steer=0.6, gear=GEAR_NEUTRAL)
    _, kin = _step(state, steer=1.0, friction=0.15)
    assert 15.0 / kin.yaw_rate[0] == pytest.approx(15.0**2 / (0.15 * G))
    assert kin.lateral_accel[0] == pytest.approx(0.15 * G)


def test_steering_rate_and_angle_limits():
    state, _ = _step(_state(speed=5.0), steer=1.0)
    assert state.steer[0] == pytest.approx(NO_RESISTANCE.max_steer_rate * DT)
    for _ in range(20):
        state, _ = _step(state, steer=1.0)
    assert state.steer[0] == pytest.approx(NO_RESISTANCE.max_steer)


def test_angle_steering_holds_its_target_and_rate_steering_integrates():
    max_delta = NO_RESISTANCE.max_steer_rate * DT  # 0.1 rad
    angle, _ = _step(_state(speed=5.0, steer=0.05), steer=0.05 / NO_RESISTANCE.max_steer)
    assert angle.steer[0] == pytest.approx(0.05)  # already at the target: stays
    rate, kin = _step(_state(speed=5.0, steer=0.05), steer=0.25, steering="rate")
    assert rate.steer[0] == pytest.approx(0.05 + 0.25 * max_delta)
    assert kin.steer_rate[0] == pytest.approx(0.25 * NO_RESISTANCE.max_steer_rate)
    held, _ = _step(rate, steer=0.0, steering="rate")  # zero rate: the wheel stays put
    assert held.steer[0] == rate.steer[0]
    for _ in range(10):
        rate, _ = _step(rate, steer=-1.0, steering="rate")
    assert rate.steer[0] == pytest.approx(-NO_RESISTANCE.max_steer)  # clipped at full lock
    with pytest.raises(ValueError, match="steering must be 'angle' or 'rate'"):
        _step(rate, steering="torque")


def test_traction_is_friction_limited():
    _, dry = _step(_state(), throttle=1.0, friction=0.9)
    _, icy = _step(_state(), throttle=1.0, friction=0.1)
    assert dry.accel[0] == pytest.approx(NO_RESISTANCE.max_drive_accel)
    assert icy.accel[0] == pytest.approx(0.1 * G)


def test_gears_shape_allowed_motion():
    moving = _state(speed=5.0)
    refused, _ = _step(moving, gear=GEAR_REVERSE)
    assert refused.gear[0] == GEAR_DRIVE
    state = _state(speed=0.0)
    state, _ = _step(state, gear=GEAR_REVERSE)
    assert state.gear[0] == GEAR_REVERSE
    for _ in range(50):
        state, _ = _step(state, throttle=1.0)
    assert state.speed[0] == pytest.approx(-NO_RESISTANCE.max_reverse_speed)
    assert state.s[0] < 0
    neutral, _ = _step(_state(speed=0.0, gear=GEAR_NEUTRAL), throttle=1.0)
    assert neutral.speed[0] == 0.0


def test_hill_hold_in_drive_but_rolling_back_in_neutral():
    held, _ = _step(_state(speed=0.0), slope=0.1)
    assert held.speed[0] == 0.0
    rolled, _ = _step(_state(speed=0.0, gear=GEAR_NEUTRAL), slope=0.1)
    assert rolled.speed[0] == pytest.approx(-G * 0.1 / np.sqrt(1.01) * DT)


def test_frenet_displacement_follows_a_bend_exactly():
    curvature, arc = 0.01, 30.0
    dx = np.array([np.sin(curvature * arc) / curvature])
    dy = np.array([(1 - np.cos(curvature * arc)) / curvature])
    ds, d = frenet_displacement(np.array([0.0]), dx, dy, np.array([curvature]))
    assert ds[0] == pytest.approx(arc)
    assert d[0] == pytest.approx(0.0, abs=1e-12)
    # 1 m left of the centre line, moving straight, on a straight road: Cartesian.
    ds, d = frenet_displacement(np.array([1.0]), np.array([3.0]), np.array([0.5]),
                                np.array([0.0]))
    assert (ds[0], d[0]) == (3.0, 1.5)


def test_driving_straight_on_a_left_bend_drifts_right():
    state = _state(speed=10.0, gear=GEAR_NEUTRAL)
    for _ in range(10):
        state, _ = _step(state, curvature=0.02)
    assert state.d[0] < 0 and state.heading[0] < 0


def test_lane_keeping_steer_hand_worked_cases():
    params = EgoParams()
    one = lambda x: np.array([float(x)])
    # on the line, aligned, straight road: wheel straight
    assert lane_keeping_steer(one(0), one(0), one(10), one(0), params)[0] == 0.0
    # on a bend of radius 50 m, aligned: the bicycle's steady-state angle atan(L k)
    bend = lane_keeping_steer(one(0), one(0), one(10), one(0.02), params)[0]
    assert bend == pytest.approx(np.arctan(2.7 * 0.02) / 0.6)
    # 1.2 m left of the line at 10 m/s, heading 0.1 rad left: steer right by
    # 0.1 + atan(0.6 * 1.2 / 12) rad
    back = lane_keeping_steer(one(1.2), one(0.1), one(10), one(0), params)[0]
    assert back == pytest.approx(-(0.1 + np.arctan(0.06)) / 0.6)
    # far off: clipped to full lock
    assert lane_keeping_steer(one(-50), one(-1.0), one(1), one(0), params)[0] == 1.0
