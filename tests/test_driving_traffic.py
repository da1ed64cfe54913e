import numpy as np
import pytest

from jaximpala.envs.driving import noise, traffic
from jaximpala.envs.driving.lanes import lane_center


def _traffic(s, lane, speed, desired, num_lanes=2, lane_width=3.5, cooldown=0.0):
    s = np.array([s], float)
    lane = np.array([lane], np.int64)
    m = s.shape[1]
    full = lambda v: np.full((1, m), float(v))
    return traffic.Traffic(
        active=np.ones((1, m), bool), s=s,
        d=lane_center(lane, np.array([[num_lanes]]), np.array([[lane_width]])), lane=lane,
        speed=np.array([speed], float), accel=full(0), length=full(4.5), width=full(1.8),
        desired_speed=np.array([desired], float), time_headway=full(1.5), max_accel=full(1.5),
        comfort_decel=full(2.0), min_gap=full(2.0), politeness=full(0.2), cooldown=full(cooldown),
    )


def _no_obstacles(x=0):
    return {"s": np.zeros((1, x)), "lane": np.zeros((1, x), np.int64), "speed": np.zeros((1, x)),
            "half_length": np.zeros((1, x)), "valid": np.zeros((1, x), bool),
            "passable": np.zeros((1, x), bool)}


KEY = np.array([12345], np.uint64)  # the env's noise key


def _run(t, obstacles, steps, num_lanes=2, solid=False, ego_s=0.0):
    for step in range(steps):
        t = traffic.step(t, obstacles, np.array([num_lanes]), np.array([3.5]),
                         np.full(t.s.shape, solid), np.array([ego_s]), np.array([step]),
                         noise.StepNoise(KEY, np.array([step])), 0.1)
    return t


def test_idm_hand_worked_values():
    # free road: a (1 - (v/v0)^4) = 2 (1 - 1/16)
    assert traffic.idm_accel(10.0, 20.0, 1.5, 2.0, 2.0, 2.0, np.inf, 0.0) == pytest.approx(1.875)
    # s* = s0 + v T = 2 + 15 = 17 m at gap 30 m: 1 * (1 - 1/16 - (17/30)^2)
    expected = 1.0 - 1.0 / 16.0 - (17.0 / 30.0) ** 2
    assert traffic.idm_accel(10.0, 20.0, 1.5, 1.0, 2.0, 2.0, 30.0, 0.0) == pytest.approx(expected)


def test_vehicle_stops_behind_a_standing_ego_without_touching_it():
    t = _traffic([0.0], [0], [15.0], [15.0], num_lanes=1)
    ego = {"s": np.array([[120.0]]), "lane": np.zeros((1, 1), np.int64),
           "speed": np.zeros((1, 1)), "half_length": np.array([[2.25]]),
           "valid": np.ones((1, 1), bool), "passable": np.zeros((1, 1), bool)}
    t = _run(t, ego, 400, num_lanes=1, ego_s=120.0)
    gap = 120.0 - 2.25 - t.s[0, 0] - 2.25
    assert t.speed[0, 0] < 0.05
    assert 0.5 < gap < 4.0  # stopped near its minimum gap (2 m)


def test_mobil_overtakes_a_slow_leader_unless_the_divider_is_solid():
    # A (desired 20 m/s) is 15 m behind B (5 m/s) in lane 0; lane 1 is empty.
    t = _traffic([0.0, 15.0], [0, 0], [10.0, 5.0], [20.0, 5.0])
    changed = _run(t, _no_obstacles(), 1)
    assert changed.lane[0].tolist() == [1, 0]
    # d moves towards the new lane centre at the lateral speed
    assert changed.d[0, 0] == pytest.approx(-1.75 + traffic.LATERAL_SPEED * 0.1)
    kept = _run(t, _no_obstacles(), 1, solid=True)
    assert kept.lane[0].tolist() == [0, 0]


def test_lane_decisions_are_staggered_across_steps():
    # vehicle 1 (stuck behind slow vehicle 0) decides only when (step + 1) % 5 == 0: step 4
    t = _traffic([15.0, 0.0], [0, 0], [5.0, 10.0], [5.0, 20.0])
    lanes = []
    for step in range(5):
        t = traffic.step(t, _no_obstacles(), np.array([2]), np.array([3.5]),
                         np.zeros(t.s.shape, bool), np.array([0.0]), np.array([step]),
                         noise.StepNoise(KEY, np.array([step])), 0.1)
        lanes.append(int(t.lane[0, 1]))
    assert lanes == [0, 0, 0, 0, 1]


def test_mobil_refuses_an_unsafe_gap():
    # A fast car in lane 1 right behind the gap would have to brake hard: no change.
    t = _traffic([0.0, 15.0, -3.0], [0, 0, 1], [10.0, 5.0, 20.0], [20.0, 5.0, 20.0])
    assert _run(t, _no_obstacles(), 1).lane[0, 0] == 0


def test_far_vehicles_respawn_around_the_ego():
    t = _traffic([-100.0, 0.0], [0, 1], [10.0, 10.0], [10.0, 10.0], cooldown=10.0)
    moved = _run(t, _no_obstacles(), 1, ego_s=0.0)
    # vehicle 0's three numbers of step 0: a position 150-190 m ahead, a lane, a speed
    u = noise.uniform(KEY, np.array([0]), traffic.STREAM_RESPAWN, 6)[0, :3]
    assert moved.s[0, 0] == 0.0 + 150.0 + 40.0 * u[0]
    assert moved.lane[0, 0] == min(int(u[1] * 2), 1)
    assert moved.speed[0, 0] == 10.0 * (0.7 + 0.3 * u[2])
    assert moved.cooldown[0, 0] == traffic.LANE_CHANGE_COOLDOWN
    assert moved.s[0, 1] == pytest.approx(1.0)  # the near one just drove 1 m


def test_heading_cos_sin_match_cos_and_sin_of_the_heading():
    rng = np.random.default_rng(0)
    n, m = 8, 12
    t = traffic.Traffic(**{f: np.zeros((n, m)) for f in traffic.TRAFFIC_FIELDS})
    t.lane, t.d = rng.integers(0, 3, (n, m)), rng.uniform(-6.0, 6.0, (n, m))
    t.speed = rng.uniform(-1.0, 30.0, (n, m))
    num_lanes, lane_width = rng.integers(1, 4, n), rng.uniform(3.2, 3.8, n)
    target = lane_center(t.lane, num_lanes[:, None], lane_width[:, None])
    lateral = np.clip(target - t.d, -traffic.LATERAL_SPEED, traffic.LATERAL_SPEED)
    heading = np.arctan2(lateral, np.maximum(t.speed, 1.0))
    assert np.abs(heading).max() > 0.5  # lane changes at low speed: steep angles
    cos, sin = t.heading_cos_sin(num_lanes, lane_width)
    np.testing.assert_allclose(cos, np.cos(heading), rtol=0, atol=1e-15)
    np.testing.assert_allclose(sin, np.sin(heading), rtol=0, atol=1e-15)
