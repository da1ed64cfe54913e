import numpy as np
import pytest

from jaximpala.envs.driving.camera import CROSSWALK_HALF_WIDTH
from jaximpala.envs.driving.config import REWARD_TERMS, DrivingConfig, RewardWeights
from jaximpala.envs.driving.dynamics import EgoParams
from jaximpala.envs.driving.sim import DrivingSim


def _sim(**overrides):
    sim = DrivingSim(DrivingConfig(**overrides), 1)
    sim.reset(np.array([0]), [123])
    return sim


def _controls(steer=0.0, throttle=0.0, brake=0.0, gear=2, signal=0):
    one = lambda v: np.array([v])
    return one(float(steer)), one(float(throttle)), one(float(brake)), one(gear), one(signal)


def _clear_road(sim):
    sim.traffic.s[:] = -1e6
    sim.traffic.active[:] = False
    sim.peds.s[:] = -1e6


def test_collision_terminates_the_episode():
    sim = _sim()
    _clear_road(sim)
    sim.traffic.active[0, 0] = True
    sim.traffic.s[0, 0] = sim.ego.s[0] + 12.0
    sim.traffic.d[0, 0] = sim.ego.d[0]
    sim.traffic.lane[0, 0] = 0 if sim.road["num_lanes"][0] == 1 else sim.traffic.lane[0, 0]
    sim.traffic.speed[0, 0] = 0.0
    sim.traffic.desired_speed[0, 0] = 0.0
    sim.ego.speed[0] = 10.0
    for _ in range(30):
        reward, terminated, truncated, info = sim.step(*_controls(throttle=0.5))
        if terminated[0]:
            break
    assert terminated[0] and not truncated[0]
    assert info["collision"][0] and not info["offroad"][0]
    assert info["reward/collision"][0] == DrivingConfig().reward.collision
    assert reward[0] < -5


def _crash(ahead: float, lateral: float, ego_speed: float, other_speed: float):
    """Drive a clear 2-lane road's ego (centred in the right lane, 10 m/s) with one car
    `ahead` metres in front (negative: behind) and `lateral` metres beside its centre line;
    the info of the step the episode ends."""
    sim = _sim(num_lanes_min=2, num_lanes_max=2)
    _clear_road(sim)
    sim.ego.d[0] = -0.5 * sim.road["lane_width"][0]
    sim.ego.heading[0], sim.ego.steer[0], sim.ego.speed[0] = 0.0, 0.0, ego_speed
    t = sim.traffic
    t.active[0, 0], t.s[0, 0], t.d[0, 0] = True, sim.ego.s[0] + ahead, sim.ego.d[0] + lateral
    t.speed[0, 0] = t.desired_speed[0, 0] = other_speed
    for _ in range(60):
        _, terminated, _, info = sim.step(*_controls(throttle=0.3 if ego_speed else 0.0))
        if terminated[0]:
            return info
    raise AssertionError("no collision")


def test_collision_kinds_name_what_the_ego_hit():
    kinds = ("front", "rear", "side", "pedestrian", "between_lanes")
    flags = lambda info: {k for k in kinds if info[f"collision/{k}"][0]}
    assert flags(_crash(ahead=12.0, lateral=0.0, ego_speed=10.0, other_speed=0.0)) == {"front"}
    # a car 1.4 m to the left: the ego clips its corner while centred in its own lane
    assert flags(_crash(ahead=12.0, lateral=1.4, ego_speed=10.0, other_speed=0.0)) == {"front"}
    assert flags(_crash(ahead=-12.0, lateral=0.0, ego_speed=0.0, other_speed=10.0)) == {"rear"}
    side = _crash(ahead=0.0, lateral=1.9, ego_speed=0.0, other_speed=0.0)  # touching beside
    assert flags(side) == {"side"} and side["collision"][0]


def test_a_collision_between_lanes_and_with_a_pedestrian_are_flagged():
    sim = _sim(num_lanes_min=2, num_lanes_max=2)
    _clear_road(sim)
    sim.ego.d[0], sim.ego.heading[0], sim.ego.speed[0] = -0.2, 0.0, 5.0  # near the divider
    sim.peds.s[0, 0], sim.peds.d[0, 0] = sim.ego.s[0] + 3.0, -0.2
    sim.peds.speed[0, 0] = 0.0
    _, terminated, _, info = sim.step(*_controls())
    assert terminated[0] and info["collision"][0]
    assert info["collision/pedestrian"][0] and info["collision/between_lanes"][0]
    assert not (info["collision/front"][0] or info["collision/rear"][0])
    # no collision, no flags
    _, _, _, quiet = _sim().step(*_controls())
    assert not any(v[0] for k, v in quiet.items() if k.startswith("collision/"))


def test_leaving_the_road_terminates_the_episode():
    sim = _sim()
    _clear_road(sim)
    sim.ego.speed[0] = 10.0
    for _ in range(100):
        _, terminated, _, info = sim.step(*_controls(steer=1.0))
        if terminated[0]:
            break
    assert terminated[0] and info["offroad"][0] and not info["collision"][0]


def test_reaching_the_goal_terminates_with_the_bonus():
    sim = _sim()
    _clear_road(sim)
    sim.ego.s[0] = sim.road["goal_s"][0] - 0.5
    sim.ego.speed[0] = 10.0
    _, terminated, _, info = sim.step(*_controls())
    assert terminated[0] and info["goal_reached"][0]
    assert info["reward/goal"][0] == DrivingConfig().reward.goal


def test_truncation_at_the_time_limit():
    sim = _sim(max_episode_steps=5)
    _clear_road(sim)
    sim.ego.speed[0] = 0.0
    flags = [sim.step(*_controls(brake=1.0))[1:3] for _ in range(5)]
    assert [bool(t[0]) for t, _ in flags] == [False] * 5
    assert [bool(t[0]) for _, t in flags] == [False] * 4 + [True]


def test_moving_through_an_occupied_crosswalk_is_penalised():
    sim = _sim(num_lanes_min=2)
    _clear_road(sim)
    cs = sim.road["crosswalk_s"][0, 0]
    sim.ego.s[0] = cs - 1.0
    sim.ego.speed[0] = 5.0
    sim.peds.s[0, 0] = cs
    # in the neighbouring lane, towards the road centre: occupied, but not in the ego's way
    sim.peds.d[0, 0] = sim.ego.d[0] - np.sign(sim.ego.d[0]) * sim.road["lane_width"][0]
    sim.peds.phase[0, 0] = 1
    sim.peds.side[0, 0] = 1.0
    sim.peds.speed[0, 0] = 0.0
    _, _, _, info = sim.step(*_controls())
    assert not info["collision"][0]
    assert info["reward/crosswalk_yield"][0] == DrivingConfig().reward.crosswalk_yield


@pytest.mark.parametrize("phase", [1, 0])  # crossing; waiting at the kerb
def test_approaching_an_occupied_crosswalk_costs_by_the_time_to_reach_it(phase):
    sim = _sim(num_lanes_min=2, reward=RewardWeights(crosswalk_approach=-1.0))
    _clear_road(sim)
    cs = sim.road["crosswalk_s"][0, 0]
    half_length = 0.5 * sim.ego_params.length
    sim.ego.s[0] = cs - CROSSWALK_HALF_WIDTH - half_length - 20.0
    sim.ego.speed[0] = 10.0
    sim.peds.s[0, 0] = cs
    sim.peds.d[0, 0] = sim.ego.d[0] - np.sign(sim.ego.d[0]) * sim.road["lane_width"][0]
    sim.peds.phase[0, 0] = phase
    sim.peds.speed[0, 0] = 0.0
    sim.peds.start_rate[0, 0] = 0.0  # a waiting one stays waiting
    _, _, _, info = sim.step(*_controls())
    gap = cs - CROSSWALK_HALF_WIDTH - (sim.ego.s[0] + half_length)
    expected = -(1.0 - gap / sim.ego.speed[0] / 3.0) if phase == 1 else 0.0
    assert 18.0 < gap < 20.0
    assert info["reward/crosswalk_approach"][0] == pytest.approx(expected)


def test_every_reward_term_is_reported_and_sums_to_the_reward():
    sim = _sim()
    for _ in range(20):
        reward, _, _, info = sim.step(*_controls(steer=0.3, throttle=0.7))
        terms = {k.removeprefix("reward/"): v for k, v in info.items()
                 if k.startswith("reward/")}
        assert sorted(terms) == sorted(REWARD_TERMS)
        assert reward[0] == pytest.approx(sum(t[0] for t in terms.values()))


def test_observation_keys_shapes_and_ranges():
    sim = _sim()
    obs = sim.observe()
    assert obs["camera"].shape == (1, 64, 64, 5) and obs["camera"].dtype == np.uint8
    assert obs["lidar"].dtype == np.float32 and 0 <= obs["lidar"].min() <= obs["lidar"].max() <= 1
    assert obs["state"].dtype == np.float32 and np.isfinite(obs["state"]).all()
    no_camera = DrivingSim(DrivingConfig(camera=False), 1)
    with pytest.raises(RuntimeError, match="reset"):
        no_camera.observe()
    no_camera.reset(np.array([0]), [5])
    assert set(no_camera.observe()) == {"lidar", "state"}


def _cross_one_divider(signal, solid):
    """Drive the ego leftwards across the divider between lanes 0 and 1 of a 2-lane road;
    return the summed info of the steps until it is in lane 1."""
    sim = _sim(num_lanes_min=2, num_lanes_max=2)
    _clear_road(sim)
    sim.road["solid"][:] = solid
    width = sim.road["lane_width"][0]
    sim.ego.d[0] = -0.3  # lane 0 spans [-width, 0]: 0.3 m from the divider
    sim.ego.heading[0] = 0.1
    sim.ego.speed[0] = 8.0
    totals = {}
    for _ in range(10):
        _, terminated, _, info = sim.step(*_controls(throttle=0.2, signal=signal))
        assert not terminated[0]
        for key, value in info.items():
            totals[key] = totals.get(key, 0.0) + float(value[0])
        if sim.ego.d[0] > 0.5:
            break
    assert 0.0 < sim.ego.d[0] < width
    return totals


def test_lane_change_without_the_signal_is_penalised_once():
    weights = DrivingConfig().reward
    quiet = _cross_one_divider(signal=0, solid=False)
    assert quiet["reward/unsignalled_lane_change"] == weights.unsignalled_lane_change
    assert quiet["reward/solid_line"] == 0.0
    signalled = _cross_one_divider(signal=1, solid=False)
    assert signalled["reward/unsignalled_lane_change"] == 0.0
    wrong_way = _cross_one_divider(signal=2, solid=False)  # right signal, moving left
    assert wrong_way["reward/unsignalled_lane_change"] == weights.unsignalled_lane_change


def test_crossing_a_solid_divider_is_penalised():
    totals = _cross_one_divider(signal=1, solid=True)
    assert totals["reward/solid_line"] == DrivingConfig().reward.solid_line
    assert totals["reward/unsignalled_lane_change"] == 0.0


def test_speeding_is_penalised_in_proportion():
    sim = _sim()
    _clear_road(sim)
    limit = sim.road["speed_limit"][0]
    sim.ego.speed[0] = 1.5 * limit
    _, _, _, info = sim.step(*_controls())
    excess = (abs(sim.ego.speed[0]) - limit) / limit
    assert info["reward/speeding"][0] == pytest.approx(DrivingConfig().reward.speeding * excess)
    assert excess > 0.4


def test_a_speeding_spell_is_one_violation_and_distance_is_what_the_ego_covered():
    sim = _sim()
    _clear_road(sim)
    limit = sim.road["speed_limit"][0]
    sim.ego.speed[0] = 1.5 * limit
    counts, distance = [], 0.0
    for _ in range(5):
        s_before = sim.ego.s[0]
        _, _, _, info = sim.step(*_controls(throttle=1.0))
        counts.append(info["sum/violation/speeding"][0])
        assert info["sum/distance"][0] == pytest.approx(sim.ego.s[0] - s_before, rel=0.05)
        distance += info["sum/distance"][0]
    assert counts == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert distance > 5 * 1.4 * limit * sim.config.dt
    # a new episode in the slot starts with no spell on
    sim.reset(np.array([0]), [124])
    _clear_road(sim)
    sim.ego.speed[0] = 1.5 * sim.road["speed_limit"][0]
    assert sim.step(*_controls())[3]["sum/violation/speeding"][0] == 1.0


def _obstacles_reference(sim):
    """The array formula `DrivingSim._obstacles` replaced: ego twice (the lanes of its two
    sides), pedestrians in their lane and in the lane 1.5 m on, valid while on the road."""
    from jaximpala.envs.driving import pedestrians
    from jaximpala.envs.driving.lanes import lane_of

    ego, peds, n = sim.ego, sim.peds, sim.num_envs
    half_w = 0.5 * sim.ego_params.width
    cat = lambda *columns: np.concatenate(columns, axis=1)
    on_road = ((peds.phase == pedestrians.CROSSING)
               & (np.abs(peds.d) < sim.half_width[:, None] + 0.5 * pedestrians.SIZE))
    p = peds.s.shape[1]
    return {
        "s": cat(ego.s[:, None], ego.s[:, None], peds.s, peds.s),
        "lane": lane_of(cat((ego.d - half_w)[:, None], (ego.d + half_w)[:, None], peds.d,
                            peds.d + 1.5 * peds.side),
                        sim.road["num_lanes"][:, None], sim.road["lane_width"][:, None]),
        "speed": cat(np.maximum(ego.speed, 0.0)[:, None].repeat(2, 1), np.zeros((n, 2 * p))),
        "half_length": cat(np.full((n, 2), 0.5 * sim.ego_params.length),
                           np.full((n, 2 * p), 0.5 * pedestrians.SIZE)),
        "valid": cat(np.ones((n, 2), bool), on_road, on_road),
        "passable": cat(np.zeros((n, 2), bool), np.ones((n, 2 * p), bool)),
    }


def test_obstacle_columns_equal_the_array_formula():
    sim = DrivingSim(DrivingConfig(pedestrian_density=1.0, jaywalk_prob=0.5), 16)
    sim.reset(np.arange(16), list(range(16)))
    rng = np.random.default_rng(0)
    crossing_seen = 0
    for _ in range(60):
        sim.step(rng.uniform(-0.3, 0.3, 16), np.full(16, 0.5), np.zeros(16),
                 np.full(16, 2), np.zeros(16, np.int64))
        sim.ego.speed[:3] = -1.0  # reversing: traffic sees it at speed 0
        got, want = sim._obstacles(), _obstacles_reference(sim)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].dtype == want[name].dtype, name
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        crossing_seen += want["valid"][:, 2:].sum()
    assert crossing_seen > 0  # the comparison covered pedestrians on the road


def test_tailgating_fires_below_the_safe_headway_and_not_beside_a_vehicle():
    from jaximpala.envs.driving.config import RewardWeights
    from jaximpala.envs.driving.reward import TAILGATE_HEADWAY

    def tailgating(lateral, gap):
        sim = DrivingSim(DrivingConfig(reward=RewardWeights(tailgating=-1.0)), 1)
        sim.reset(np.array([0]), [123])
        _clear_road(sim)
        sim.ego.speed[0], sim.ego.heading[0] = 10.0, 0.0
        t = sim.traffic
        t.active[0, 0], t.speed[0, 0], t.d[0, 0] = True, 10.0, sim.ego.d[0] + lateral
        t.s[0, 0] = sim.ego.s[0] + 0.5 * (sim.ego_params.length + t.length[0, 0]) + gap
        t.desired_speed[0, 0] = 10.0
        _, _, _, info = sim.step(*_controls(throttle=0.3))
        return -info["reward/tailgating"][0], sim
    # The gap after the step, over the ego's speed after it (both cars hold ~10 m/s).
    raw, sim = tailgating(lateral=0.0, gap=4.0)
    front = sim.ego.s[0] + 0.5 * sim.ego_params.length
    gap = sim.traffic.s[0, 0] - 0.5 * sim.traffic.length[0, 0] - front
    assert raw == pytest.approx(1.0 - gap / sim.ego.speed[0] / TAILGATE_HEADWAY)
    assert 0.4 < raw < 0.8
    assert tailgating(lateral=0.0, gap=15.0)[0] == 0.0  # 1.5 s behind: safe
    assert tailgating(lateral=3.5, gap=4.0)[0] == 0.0  # in the next lane


def test_time_to_collision_fires_closing_on_a_slower_vehicle_only():
    from jaximpala.envs.driving.config import RewardWeights
    from jaximpala.envs.driving.reward import TTC_HORIZON

    def time_to_collision(lateral, gap, lead_speed):
        sim = DrivingSim(DrivingConfig(reward=RewardWeights(time_to_collision=-1.0)), 1)
        sim.reset(np.array([0]), [123])
        _clear_road(sim)
        sim.ego.speed[0], sim.ego.heading[0] = 12.0, 0.0
        t = sim.traffic
        t.active[0, 0], t.speed[0, 0], t.d[0, 0] = True, lead_speed, sim.ego.d[0] + lateral
        t.s[0, 0] = sim.ego.s[0] + 0.5 * (sim.ego_params.length + t.length[0, 0]) + gap
        t.desired_speed[0, 0] = lead_speed
        _, _, _, info = sim.step(*_controls(throttle=0.3))
        return -info["reward/time_to_collision"][0], sim
    # 10 m behind a car 4 m/s slower: 2.5 s to contact, less after the step.
    raw, sim = time_to_collision(lateral=0.0, gap=10.0, lead_speed=8.0)
    front = sim.ego.s[0] + 0.5 * sim.ego_params.length
    gap = sim.traffic.s[0, 0] - 0.5 * sim.traffic.length[0, 0] - front
    closing = sim.ego.speed[0] - sim.traffic.speed[0, 0]
    assert raw == pytest.approx(1.0 - gap / closing / TTC_HORIZON)
    assert 0.1 < raw < 0.4
    assert time_to_collision(lateral=0.0, gap=40.0, lead_speed=8.0)[0] == 0.0  # 10 s away
    assert time_to_collision(lateral=0.0, gap=3.0, lead_speed=14.0)[0] == 0.0  # falling back
    assert time_to_collision(lateral=3.5, gap=10.0, lead_speed=8.0)[0] == 0.0  # next lane


def test_progress_speed_cap_limits_the_progress_reward_not_the_distance():
    from jaximpala.envs.driving.config import RewardWeights

    def step_at(speed, cap):
        sim = DrivingSim(DrivingConfig(progress_speed_cap=cap,
                                       reward=RewardWeights(progress=1.0)), 1)
        sim.reset(np.array([0]), [5])
        _clear_road(sim)
        sim.ego.speed[0], sim.ego.heading[0], sim.ego.steer[0] = speed, 0.0, 0.0
        _, _, _, info = sim.step(*_controls(throttle=0.3))
        return info["reward/progress"][0], info["sum/distance"][0], sim
    limit = step_at(10.0, None)[2].road["speed_limit"][0]
    fast = 1.2 * limit
    uncapped, metres, sim = step_at(fast, None)
    assert uncapped == pytest.approx(metres) and metres > limit * sim.config.dt
    capped, capped_metres, sim = step_at(fast, 0.9)
    assert capped_metres == metres  # the car moves the same
    assert capped == pytest.approx(0.9 * limit * sim.config.dt)
    slow, slow_metres, _ = step_at(0.5 * limit, 0.9)
    assert slow == pytest.approx(slow_metres)  # under the cap: every metre counts


def test_radar_reads_the_nearest_vehicle_ahead_in_the_ego_path():
    from jaximpala.envs.driving.spaces import RADAR_SPEED_SCALE

    def radar(lateral, gap, lead_speed, **config):
        sim = DrivingSim(DrivingConfig(radar=True, max_sensor_noise=0.0, **config), 1)
        sim.reset(np.array([0]), [123])
        _clear_road(sim)
        sim.ego.speed[0], sim.ego.heading[0] = 12.0, 0.0
        t = sim.traffic
        for j, extra in ((0, 0.0), (1, 20.0)):  # a second car farther ahead in the same line
            t.active[0, j], t.speed[0, j], t.d[0, j] = True, lead_speed, sim.ego.d[0] + lateral
            t.s[0, j] = sim.ego.s[0] + 0.5 * (sim.ego_params.length + t.length[0, j]) + gap + extra
            t.desired_speed[0, j] = lead_speed
        sim.step(*_controls(throttle=0.3))
        return sim.observe()["radar"][0], sim
    reading, sim = radar(lateral=0.5, gap=10.0, lead_speed=8.0)
    front = sim.ego.s[0] + 0.5 * sim.ego_params.length
    gap = sim.traffic.s[0, 0] - 0.5 * sim.traffic.length[0, 0] - front
    closing = sim.ego.speed[0] - sim.traffic.speed[0, 0]
    assert reading[0] == pytest.approx(gap / sim.config.lidar_max_range, rel=1e-5)
    assert reading[1] == pytest.approx(closing / RADAR_SPEED_SCALE, rel=1e-5)
    assert reading.dtype == np.float32
    falling_back, _ = radar(lateral=0.0, gap=10.0, lead_speed=15.0)
    assert falling_back[1] < 0.0
    assert list(radar(lateral=3.5, gap=10.0, lead_speed=8.0)[0]) == [1.0, 0.0]  # next lane
    # beyond the episode's visibility (sensor_range <= 30 m here): nothing
    assert list(radar(lateral=0.0, gap=35.0, lead_speed=8.0, sensor_range_min=20.0,
                      sensor_range_max=30.0)[0]) == [1.0, 0.0]


def test_lane_centering_is_the_offset_from_the_lane_centre_per_metre_moved():
    from jaximpala.envs.driving.config import RewardWeights

    def lane_centering(fraction_of_lane):
        """The raw term per metre, one step at 10 m/s after placing the ego
        `fraction_of_lane` across the rightmost of two lanes (0.5: its centre line, 1.0:
        the divider)."""
        sim = DrivingSim(DrivingConfig(num_lanes_min=2, num_lanes_max=2,
                                       reward=RewardWeights(lane_centering=-1.0)), 1)
        sim.reset(np.array([0]), [7])
        _clear_road(sim)
        width = sim.road["lane_width"][0]
        sim.ego.d[0] = (fraction_of_lane - 1.0) * width
        sim.ego.heading[0], sim.ego.steer[0], sim.ego.speed[0] = 0.0, 0.0, 10.0
        _, _, _, info = sim.step(*_controls(throttle=0.3))
        metres = info["sum/distance"][0]
        assert 0.9 < metres < 1.1
        return -info["reward/lane_centering"][0] / metres  # per metre

    assert lane_centering(0.5) == pytest.approx(0.0, abs=0.02)
    assert lane_centering(0.25) == pytest.approx(0.5, abs=0.02)
    assert lane_centering(0.95) == pytest.approx(0.9, abs=0.02)


def _assisted(num_lanes=2, lane=0, **overrides):
    """A lane-assist sim on an empty, straight, flat `num_lanes` road, the ego at 10 m/s on
    the centre line of `lane`."""
    config = dict(num_lanes_min=num_lanes, num_lanes_max=num_lanes, traffic_density=0.0,
                  pedestrian_density=0.0, steering="lane_assist")
    sim = DrivingSim(DrivingConfig(**{**config, **overrides}), 1)
    sim.reset(np.array([0]), [11])
    _clear_road(sim)
    for name in ("curvature", "slope", "solid"):
        sim.road[name][:] = 0
    sim.road["roughness"][:] = 0.0
    width = sim.road["lane_width"][0]
    sim.ego.d[0] = (lane + 0.5) * width - 0.5 * num_lanes * width
    sim.assist_lane[0] = lane
    sim.ego.heading[0], sim.ego.steer[0], sim.ego.speed[0] = 0.0, 0.0, 10.0
    return sim, width


def _drive(sim, steps, signal=0, steer=0.0):
    """Step with a speed-holding throttle; return the summed info and the signals shown."""
    totals, shown = {}, []
    for _ in range(steps):
        _, terminated, _, info = sim.step(*_controls(steer=steer, throttle=0.15, signal=signal))
        assert not terminated[0]
        shown.append(int(sim.signal[0]))
        for key, value in info.items():
            totals[key] = totals.get(key, 0.0) + float(value[0])
    return totals, shown


def test_lane_assist_holds_the_lane_centre_and_the_nudged_line():
    sim, width = _assisted(num_lanes=2, lane=0)
    sim.ego.d[0] += 0.6  # knocked 0.6 m off the centre line, pointing further off
    sim.ego.heading[0] = 0.05
    _drive(sim, 60)
    assert sim.ego.d[0] == pytest.approx(-0.5 * width, abs=0.05)
    assert abs(sim.ego.heading[0]) < 0.01
    _drive(sim, 60, steer=-1.0)  # the full nudge right: a quarter lane off the centre
    assert sim.ego.d[0] == pytest.approx(-0.75 * width, abs=0.05)
    assert sim.assist_lane[0] == 0
    fixed, width = _assisted(num_lanes=2, lane=0, lane_assist_nudge=0.0)
    _drive(fixed, 60, steer=-1.0)  # no nudge: the command is ignored
    assert fixed.ego.d[0] == pytest.approx(-0.5 * width, abs=0.02)


def test_lane_assist_changes_lane_whole_once_the_signal_is_held():
    from jaximpala.envs.driving.reward import SIGNAL_LEFT

    sim, width = _assisted(num_lanes=2, lane=0)
    steps = sim.config.lane_change_signal_steps
    _drive(sim, steps - 1, signal=SIGNAL_LEFT)
    assert sim.assist_lane[0] == 0  # one step short: still holding lane 0
    _drive(sim, 1, signal=SIGNAL_LEFT)
    assert sim.assist_lane[0] == 1
    # Released at once: the change is committed, the signal shows left until the centre
    # is in lane 1, and the move is a signalled lane change.
    totals, shown = _drive(sim, 100)
    crossed = next(i for i, s in enumerate(shown) if s == 0)
    assert crossed > 3 and set(shown[:crossed]) == {SIGNAL_LEFT}
    assert totals["reward/unsignalled_lane_change"] == 0.0
    assert sim.ego.d[0] == pytest.approx(0.5 * width, abs=0.05)


def test_lane_assist_needs_an_unbroken_signal_and_a_lane_to_go_to():
    from jaximpala.envs.driving.reward import SIGNAL_LEFT, SIGNAL_RIGHT

    sim, _ = _assisted(num_lanes=2, lane=0)
    steps = sim.config.lane_change_signal_steps
    for _ in range(3):  # one step short, then the other signal: the count starts again
        _drive(sim, steps - 1, signal=SIGNAL_LEFT)
        _drive(sim, 1, signal=SIGNAL_RIGHT)  # right from lane 0: off the road, refused
    _drive(sim, 2 * steps, signal=SIGNAL_RIGHT)
    assert sim.assist_lane[0] == 0
    _drive(sim, steps - 1, signal=SIGNAL_LEFT)
    _drive(sim, 1)
    _drive(sim, steps - 1, signal=SIGNAL_LEFT)
    assert sim.assist_lane[0] == 0
    solid, width = _assisted(num_lanes=2, lane=0)
    solid.road["solid"][:] = 1
    _drive(solid, 3 * steps, signal=SIGNAL_LEFT)
    assert solid.assist_lane[0] == 0
    assert solid.ego.d[0] == pytest.approx(-0.5 * width, abs=0.05)


def test_lane_assist_signal_time_is_configurable():
    from jaximpala.envs.driving.reward import SIGNAL_RIGHT

    sim, _ = _assisted(num_lanes=3, lane=1, lane_change_signal_steps=3)
    _drive(sim, 3, signal=SIGNAL_RIGHT)
    assert sim.assist_lane[0] == 0


def test_lane_assist_gap_check_waits_for_a_clear_target_lane():
    from jaximpala.envs.driving.reward import SIGNAL_LEFT

    steps = DrivingConfig().lane_change_signal_steps

    def blocked_for(gap_time, ahead, speed):
        """Hold a left signal with one car in lane 1, `ahead` m in front of the ego
        (negative: behind), at `speed` m/s. Returns the steps the change waited after the
        signal's first `steps` (None if it is not made in 60 steps) and, per step, the
        car's bumper-to-bumper gap ahead of the ego (negative while it is not past) as the
        step found it."""
        sim, width = _assisted(num_lanes=2, lane=0, lane_assist_gap_time=gap_time,
                               traffic_density=0.1)  # slots for traffic, cleared
        t = sim.traffic
        t.active[0, 0], t.s[0, 0], t.d[0, 0] = True, sim.ego.s[0] + ahead, 0.5 * width
        t.lane[0, 0], t.speed[0, 0], t.desired_speed[0, 0] = 1, speed, speed
        reach = 0.5 * (t.length[0, 0] + sim.ego_params.length)
        gaps = []
        for step in range(60):
            gaps.append(sim.traffic.s[0, 0] - sim.ego.s[0] - reach)
            _drive(sim, 1, signal=SIGNAL_LEFT)
            if sim.assist_lane[0] == 1:
                return step + 1 - steps, gaps
        return None, gaps

    ego_length = EgoParams().length  # the sim's default ego
    assert blocked_for(0.0, 0.0, 10.0)[0] == 0  # no check: changes into the car alongside
    assert blocked_for(3.0, 0.0, 10.0)[0] is None  # alongside at the same speed: never
    assert blocked_for(3.0, 40.0, 10.0)[0] == 0  # far ahead at the same speed: at once
    # 8 m/s faster from 60 m behind: the ego length plus 8 m/s x 3 s (~29 m bumper to
    # bumper) are there all along.
    assert blocked_for(3.0, -60.0, 18.0)[0] == 0
    # From 25 m behind they are not. Once it is past, the ego gains on it no more and the
    # change needs the ego length only: made on the first step that finds that gap.
    waited, gaps = blocked_for(3.0, -25.0, 18.0)
    assert waited is not None and waited > 20
    made = steps - 1 + waited
    assert gaps[made] >= ego_length > gaps[made - 1]
