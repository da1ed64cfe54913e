import numpy as np
import pytest

from jaximpala.envs.driving import scenario
from jaximpala.envs.driving.config import DrivingConfig, num_traffic


def _equal(a, b):
    for name in scenario.Scenario.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, dict):
            if x.keys() != y.keys() or not all(np.array_equal(x[k], y[k]) for k in x):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def test_same_seed_same_scenario_regardless_of_batch():
    config = DrivingConfig()
    batch = scenario.generate(config, [11, 12, 13])
    alone = scenario.generate(config, [12])
    assert _equal(alone, scenario.generate(config, [12]))
    assert np.array_equal(batch.curvature[1], alone.curvature[0])
    assert batch.traffic["s"][1].tolist() == alone.traffic["s"][0].tolist()
    assert not np.array_equal(batch.curvature[0], batch.curvature[2])


def test_scenario_ranges_follow_config():
    config = DrivingConfig(num_lanes_min=2, num_lanes_max=3, max_curvature=0.01)
    s = scenario.generate(config, range(40))
    assert s.curvature.shape == (40, scenario.grid_size(config))
    assert set(np.unique(s.num_lanes)) <= {2, 3}
    assert np.abs(s.curvature).max() <= 0.01
    assert (s.lane_width >= config.lane_width_min).all()
    assert (s.friction > 0).all() and (s.friction <= 1.0).all()
    # the start is straight so every episode begins calmly
    assert (s.curvature[:, :40] == 0).all()


def test_road_condition_sets_friction_class():
    icy = scenario.generate(DrivingConfig(condition_probs=(0.0, 0.0, 1.0)), range(10))
    dry = scenario.generate(DrivingConfig(condition_probs=(1.0, 0.0, 0.0)), range(10))
    assert (icy.condition == 2).all() and (icy.friction <= 0.2).all()
    assert (dry.condition == 0).all() and (dry.friction >= 0.8).all()


def test_crosswalks_are_sorted_spaced_and_make_dividers_solid():
    config = DrivingConfig()
    s = scenario.generate(config, range(30))
    for k in range(30):
        real = s.crosswalk_s[k][s.crosswalk_s[k] < scenario.NO_CROSSWALK]
        assert len(real) >= 1
        assert (np.diff(real) >= 40.0).all()
        assert (real < s.goal_s[k]).all()
        for cs in real:
            assert s.solid[k, int(cs) - 5]


def test_initial_traffic_does_not_overlap():
    config = DrivingConfig(traffic_density=1.0)
    s = scenario.generate(config, range(20))
    t = s.traffic
    assert t["s"].shape == (20, num_traffic(config))
    for k in range(20):
        active = t["active"][k]
        for lane in np.unique(t["lane"][k][active]):
            pos = np.sort(t["s"][k][active & (t["lane"][k] == lane)])
            assert (np.diff(pos) > 7.0).all()
        # the ego's neighbourhood is kept clear
        assert (np.abs(t["s"][k][active] - scenario.EGO_START_S) > 10.0).all()


def _reference_scenario(config, seed):
    """The scenario of a seed by plain array code, drawing from the Generator in the same
    order with numpy's own uniform/choice (the code the compiled kernels replaced)."""
    from jaximpala.envs.driving.config import FRICTION_RANGES, ROAD_CONDITIONS, num_pedestrians

    rng = np.random.default_rng(seed)
    size = scenario.grid_size(config)
    grid_s = np.arange(size) * scenario.GRID_STEP
    noise_key = rng.integers(0, 2**63, dtype=np.uint64)
    segments = int(np.ceil(size / 40.0)) + 1
    u = rng.random(4 * segments)
    lengths, straight = 40.0 + 80.0 * u[:segments], u[segments:2 * segments] < 0.4
    mc, ms = config.max_curvature, config.max_slope
    curvatures = np.where(straight, 0.0, -mc + (mc - -mc) * u[2 * segments:3 * segments])
    slopes = -ms + (ms - -ms) * u[3 * segments:]
    curvatures[0] = slopes[0] = 0.0
    segment = np.searchsorted(np.cumsum(lengths), grid_s, side="right")
    curvature, slope = curvatures[segment], slopes[segment]
    num_lanes = int(rng.integers(config.num_lanes_min, config.num_lanes_max + 1))
    u = rng.random(7)
    lane_width = rng_uniform(config.lane_width_min, config.lane_width_max, u[0])
    speed_limit = rng_uniform(config.speed_limit_min, config.speed_limit_max, u[1])
    probs = np.asarray(config.condition_probs)
    condition = int(np.searchsorted(np.cumsum(probs) / probs.sum(), u[2], side="right"))
    goal_s = scenario.EGO_START_S + config.route_length
    kept = []
    if config.crosswalks_max:
        count = int(rng.integers(1, config.crosswalks_max + 1))
        route = config.route_length
        low, high = scenario.EGO_START_S + min(50.0, route / 4), goal_s - min(20.0, route / 10)
        for cs in np.sort(rng.uniform(low, high, config.crosswalks_max))[:count]:
            if not kept or cs - kept[-1] >= 40.0:
                kept.append(cs)
    crosswalk_s = np.full(config.crosswalks_max, scenario.NO_CROSSWALK)
    crosswalk_s[:len(kept)] = kept
    solid = np.abs(curvature) > scenario.SOLID_CURVATURE
    for cs in kept:
        solid |= (grid_s > cs - scenario.SOLID_BEFORE_CROSSWALK) & (
            grid_s < cs + scenario.CROSSWALK_HALF_WIDTH)
    ego_lane = int(rng.integers(0, num_lanes))
    ego_speed = rng.uniform(0.0, 0.6) * speed_limit
    m = num_traffic(config)
    lanes, offs, free_slots = scenario._traffic_slots(num_lanes)
    chosen = rng.permutation(free_slots)[:m]
    c = len(chosen)
    s = np.full(m, scenario.FAR_AWAY)
    s[:c] = scenario.EGO_START_S + offs[chosen] + rng.uniform(-2.0, 2.0, c)
    lane = np.zeros(m, np.int64)
    lane[:c] = lanes[chosen]
    truck = rng.random(m) < 0.1
    length = np.where(truck, rng.uniform(8.0, 10.0, m), rng.uniform(4.0, 5.2, m))
    width = np.where(truck, 2.4, rng.uniform(1.7, 2.0, m))
    desired = speed_limit * rng.uniform(0.75, 1.1, m)
    speed = desired * rng.uniform(0.6, 1.0, m) * (np.arange(m) < c)
    drivers = {k: rng.uniform(lo, hi, m) for k, lo, hi in [
        ("time_headway", 1.0, 2.0), ("max_accel", 1.0, 2.0), ("comfort_decel", 1.5, 3.0),
        ("min_gap", 1.5, 3.0), ("politeness", 0.0, 0.5)]}
    p = num_pedestrians(config)
    jaywalk = rng.random(p) < config.jaywalk_prob
    anywhere = rng.uniform(scenario.EGO_START_S + 20.0, scenario.EGO_START_S + 250.0, p)
    if kept:
        which = rng.integers(0, len(kept), p)
        at_crosswalk = crosswalk_s[which] + rng.uniform(-1.5, 1.5, p)
    else:
        at_crosswalk = anywhere
    return dict(
        noise_key=noise_key, curvature=curvature, slope=slope, solid=solid,
        num_lanes=num_lanes, lane_width=lane_width, speed_limit=speed_limit,
        condition=condition,
        friction=rng_uniform(*FRICTION_RANGES[ROAD_CONDITIONS[condition]], u[3]),
        roughness=rng_uniform(0.0, config.max_roughness, u[4]),
        sensor_range=rng_uniform(config.sensor_range_min, config.sensor_range_max, u[5]),
        sensor_noise=rng_uniform(0.0, config.max_sensor_noise, u[6]), goal_s=goal_s,
        crosswalk_s=crosswalk_s, ego_lane=ego_lane, ego_speed=ego_speed,
        traffic=dict(active=np.arange(m) < c, s=s, lane=lane, speed=speed, length=length,
                     width=width, desired_speed=desired, **drivers),
        pedestrians=dict(
            s=np.where(jaywalk, anywhere, at_crosswalk), dormant=~jaywalk & (not kept),
            side=np.where(rng.random(p) < 0.5, -1.0, 1.0), speed=rng.uniform(0.9, 1.7, p),
            start_rate=rng.uniform(0.05, 0.4, p)),
    )


def rng_uniform(low, high, u):
    """What Generator.uniform(low, high) returns for the double u it drew."""
    return low + (high - low) * u


@pytest.mark.parametrize("overrides", [
    {}, {"crosswalks_max": 0, "jaywalk_prob": 0.0}, {"crosswalks_max": 0, "jaywalk_prob": 1.0},
    {"num_lanes_min": 1, "num_lanes_max": 1, "traffic_density": 1.0, "pedestrian_density": 1.0},
    {"traffic_density": 0.0, "pedestrian_density": 0.0}, {"route_length": 60.0},
])
def test_compiled_generation_equals_the_array_reference_bit_for_bit(overrides):
    config = DrivingConfig(**overrides)
    for seed in range(40):
        got, want = scenario.generate_one(config, seed), _reference_scenario(config, seed)
        assert got.keys() == want.keys()
        for name, value in want.items():
            pairs = value.items() if isinstance(value, dict) else [(None, value)]
            for key, expected in pairs:
                actual = got[name][key] if key else got[name]
                assert np.asarray(actual).dtype == np.asarray(expected).dtype, (name, key)
                np.testing.assert_array_equal(actual, expected, err_msg=f"{seed} {name} {key}")
