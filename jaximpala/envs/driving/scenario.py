"""Procedural scenarios: a fresh road, weather, terrain, traffic and pedestrians per episode.

A scenario is a pure function of (config, episode seed): each episode seed seeds its own
`np.random.Generator`, which draws everything in a fixed order, so the same seed gives the same
scenario bit for bit no matter which env slot or batch size it lands in.

The road is one-way with 1-4 lanes. Geometry lives on a 1 m grid along the arc length `s`:
`curvature[G]`, `slope[G]` and `solid[G]` (lane dividers that must not be crossed: sharp
curves and the approach to crosswalks). Lane 0 is the rightmost lane; the lateral offset `d`
is positive to the left of the road centre line.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from jaximpala.envs.driving.config import (
    FRICTION_RANGES,
    ROAD_CONDITIONS,
    DrivingConfig,
    max_road_length,
    num_pedestrians,
    num_traffic,
)

GRID_STEP = 1.0  # metres between road grid samples
EGO_START_S = 10.0
FAR_AWAY = -1.0e6  # where inactive traffic slots are parked
SOLID_CURVATURE = 0.012  # dividers are solid on curves tighter than ~83 m radius
SOLID_BEFORE_CROSSWALK = 25.0  # metres of solid divider before a crosswalk
CROSSWALK_HALF_WIDTH = 2.0  # metres along s
NO_CROSSWALK = 1.0e9


def grid_size(config: DrivingConfig) -> int:
    """Number of samples G of the per-scenario road grids."""
    return int(np.ceil(max_road_length(config) / GRID_STEP)) + 1


@dataclass
class Scenario:
    """One batch of K scenarios. Every array has a leading scenario axis K."""

    noise_key: np.ndarray  # [K] uint64: key of the counter-based per-step noise
    curvature: np.ndarray  # [K, G] 1/m
    slope: np.ndarray  # [K, G] road grade
    solid: np.ndarray  # [K, G] bool: lane dividers are solid here
    num_lanes: np.ndarray  # [K] int
    lane_width: np.ndarray  # [K] m
    speed_limit: np.ndarray  # [K] m/s
    condition: np.ndarray  # [K] int index into ROAD_CONDITIONS
    friction: np.ndarray  # [K] tyre-road friction coefficient mu
    roughness: np.ndarray  # [K] std of acceleration noise, m/s^2
    sensor_range: np.ndarray  # [K] m
    sensor_noise: np.ndarray  # [K] lidar noise std, fraction of the lidar max range
    goal_s: np.ndarray  # [K] m
    crosswalk_s: np.ndarray  # [K, C] centre of each crosswalk along s; NO_CROSSWALK if none
    ego_lane: np.ndarray  # [K] int starting lane of the ego
    ego_speed: np.ndarray  # [K] starting speed of the ego
    traffic: dict[str, np.ndarray]  # each [K, M]
    pedestrians: dict[str, np.ndarray]  # each [K, P]


def generate_one(config: DrivingConfig, seed: int) -> dict:
    """The scenario of one episode seed: `Scenario`'s fields without the leading axis."""
    return _generate_one(config, np.random.default_rng(int(seed)))


def generate(config: DrivingConfig, seeds: list[int] | np.ndarray) -> Scenario:
    """The scenarios of the given episode seeds (a K-long sequence of ints)."""
    ones = [generate_one(config, seed) for seed in seeds]
    # np.array of a list stacks like np.stack at a fraction of its per-call cost, which
    # dominates here: a reset usually generates one or two scenarios.
    fields = {}
    for name in Scenario.__dataclass_fields__:
        if name in ("traffic", "pedestrians"):
            keys = ones[0][name].keys() if ones else ()
            fields[name] = {k: np.array([o[name][k] for o in ones]) for k in keys}
        else:
            fields[name] = np.array([o[name] for o in ones])
    return Scenario(**fields)


class _Draws:
    """`count` uniform doubles drawn from `rng` at once, handed out in order by `uniform` /
    `random` with the values the same sequence of `rng.uniform` / `rng.random` calls would
    return: numpy maps each 53-bit draw u to low + (high - low) * u, and these do the same.
    One Generator call instead of one per quantity (their overhead dominates a scenario)."""

    def __init__(self, rng: np.random.Generator, count: int):
        self._u = rng.random(count)
        self._next = 0

    def random(self, size: int | None = None):
        """Like rng.random(size): [size] floats, or one float when size is None."""
        start = self._next
        self._next += 1 if size is None else size
        if self._next > self._u.size:
            raise RuntimeError(f"drew {self._next} of {self._u.size} prepared numbers")
        return self._u[start] if size is None else self._u[start: self._next]

    def uniform(self, low: float, high: float, size: int | None = None):
        """Like rng.uniform(low, high, size)."""
        return low + (high - low) * self.random(size)


@functools.lru_cache(maxsize=16)
def _condition_cdf(probs: tuple[float, float, float]) -> np.ndarray:
    """Cumulative road-condition probabilities, normalised exactly as `Generator.choice`
    normalises `p`, so drawing with it consumes and returns what `choice` would."""
    cdf = np.asarray(probs, dtype=np.float64).cumsum()
    cdf /= cdf[-1]
    return cdf


@functools.lru_cache(maxsize=16)
def _grid_s(size: int) -> np.ndarray:
    """[G] arc length of each road grid sample (shared, read-only)."""
    grid_s = np.arange(size) * GRID_STEP
    grid_s.flags.writeable = False
    return grid_s


def _generate_one(config: DrivingConfig, rng: np.random.Generator) -> dict:
    """One scenario as a dict of scalars and 1-D arrays; draws in a fixed order from `rng`."""
    size = grid_size(config)
    noise_key = rng.integers(0, 2**63, dtype=np.uint64)
    curvature, slope = _road_profile(config, rng, size)
    num_lanes = int(rng.integers(config.num_lanes_min, config.num_lanes_max + 1))
    draws = _Draws(rng, 7)
    lane_width = draws.uniform(config.lane_width_min, config.lane_width_max)
    speed_limit = draws.uniform(config.speed_limit_min, config.speed_limit_max)
    # = rng.choice(len(ROAD_CONDITIONS), p=condition_probs), without its argument checks
    condition = int(_condition_cdf(config.condition_probs).searchsorted(draws.random(),
                                                                       "right"))
    friction = draws.uniform(*FRICTION_RANGES[ROAD_CONDITIONS[condition]])
    roughness = draws.uniform(0.0, config.max_roughness)
    sensor_range = draws.uniform(config.sensor_range_min, config.sensor_range_max)
    sensor_noise = draws.uniform(0.0, config.max_sensor_noise)
    goal_s = EGO_START_S + config.route_length
    crosswalk_s = _crosswalks(config, rng, goal_s)
    solid = np.abs(curvature) > SOLID_CURVATURE
    # Solid from the first grid point past cs - SOLID_BEFORE_CROSSWALK to the last one before
    # cs + CROSSWALK_HALF_WIDTH (exclusive on both ends), found by bisection.
    real = crosswalk_s[crosswalk_s < NO_CROSSWALK]
    grid_s = _grid_s(size)
    starts = grid_s.searchsorted(real - SOLID_BEFORE_CROSSWALK, "right")
    stops = grid_s.searchsorted(real + CROSSWALK_HALF_WIDTH, "left")
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        solid[start:stop] = True
    ego_lane = int(rng.integers(0, num_lanes))
    ego_speed = rng.uniform(0.0, 0.6) * speed_limit
    traffic = _traffic(config, rng, num_lanes, speed_limit, ego_lane)
    pedestrians = _pedestrians(config, rng, crosswalk_s)
    return dict(
        noise_key=noise_key, curvature=curvature, slope=slope, solid=solid, num_lanes=num_lanes,
        lane_width=lane_width, speed_limit=speed_limit, condition=condition, friction=friction,
        roughness=roughness, sensor_range=sensor_range, sensor_noise=sensor_noise, goal_s=goal_s,
        crosswalk_s=crosswalk_s, ego_lane=ego_lane, ego_speed=ego_speed, traffic=traffic,
        pedestrians=pedestrians,
    )


def _road_profile(config: DrivingConfig, rng: np.random.Generator, size: int):
    """Piecewise-constant curvature and slope over the grid: straights and arcs of 40-120 m."""
    max_segments = int(np.ceil(size * GRID_STEP / 40.0)) + 1
    draws = _Draws(rng, 4 * max_segments)
    lengths = draws.uniform(40.0, 120.0, max_segments)
    is_straight = draws.random(max_segments) < 0.4
    curvatures = np.where(
        is_straight, 0.0, draws.uniform(-config.max_curvature, config.max_curvature, max_segments)
    )
    slopes = draws.uniform(-config.max_slope, config.max_slope, max_segments)
    # The start is straight and flat so every episode begins in a calm state.
    curvatures[0] = 0.0
    slopes[0] = 0.0
    ends = np.cumsum(lengths)
    segment = np.searchsorted(ends, _grid_s(size), side="right")
    return curvatures[segment], slopes[segment]


def _crosswalks(config: DrivingConfig, rng: np.random.Generator, goal_s: float) -> np.ndarray:
    """[C] crosswalk centres, sorted, at least 40 m apart; absent ones are NO_CROSSWALK."""
    result = np.full(config.crosswalks_max, NO_CROSSWALK)
    if config.crosswalks_max == 0:
        return result
    count = int(rng.integers(1, config.crosswalks_max + 1))
    # Not right at the start (room to reach speed) nor at the goal; scaled for short routes.
    route = config.route_length
    low, high = EGO_START_S + min(50.0, route / 4), goal_s - min(20.0, route / 10)
    candidates = np.sort(rng.uniform(low, high, config.crosswalks_max))
    kept = []
    for cs in candidates[:count]:
        if not kept or cs - kept[-1] >= 40.0:
            kept.append(cs)
    result[: len(kept)] = kept
    return result


def _traffic(config, rng, num_lanes: int, speed_limit: float, ego_lane: int) -> dict:
    """[M] arrays of initial traffic state and per-vehicle driver parameters.

    Vehicles start in free 12 m slots within [-60, +200] m of the ego; the slot next to the ego
    is kept clear. Slots that do not fit are parked FAR_AWAY and marked inactive.
    """
    count = num_traffic(config)
    lanes, offs, free_slots = _traffic_slots(num_lanes)
    chosen = rng.permutation(free_slots)[:count]
    active = np.zeros(count, bool)
    active[: len(chosen)] = True
    s = np.full(count, FAR_AWAY)
    lane = np.zeros(count, np.int64)
    draws = _Draws(rng, len(chosen) + 11 * count)
    s[: len(chosen)] = EGO_START_S + offs[chosen] + draws.uniform(-2.0, 2.0, len(chosen))
    lane[: len(chosen)] = lanes[chosen]
    is_truck = draws.random(count) < 0.1
    length = np.where(is_truck, draws.uniform(8.0, 10.0, count), draws.uniform(4.0, 5.2, count))
    width = np.where(is_truck, 2.4, draws.uniform(1.7, 2.0, count))
    desired_speed = speed_limit * draws.uniform(0.75, 1.1, count)
    speed = desired_speed * draws.uniform(0.6, 1.0, count)
    return dict(
        active=active, s=s, lane=lane, speed=speed * active,
        length=length, width=width, desired_speed=desired_speed,
        time_headway=draws.uniform(1.0, 2.0, count), max_accel=draws.uniform(1.0, 2.0, count),
        comfort_decel=draws.uniform(1.5, 3.0, count), min_gap=draws.uniform(1.5, 3.0, count),
        politeness=draws.uniform(0.0, 0.5, count),
    )


@functools.lru_cache(maxsize=8)
def _traffic_slots(num_lanes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starting slots of traffic, 12 m long in every lane over [-60, 200) m from the ego:
    lane [S] and offset [S] of each slot, and the ids of the free ones (not next to the ego).
    Shared, read-only arrays."""
    offsets = np.arange(-60.0, 200.0, 12.0)
    lanes, offs = np.meshgrid(np.arange(num_lanes), offsets, indexing="ij")
    lanes, offs = lanes.ravel(), offs.ravel()
    free_slots = np.flatnonzero(np.abs(offs) > 15.0)
    for array in (lanes, offs, free_slots):
        array.flags.writeable = False
    return lanes, offs, free_slots


def _pedestrians(config, rng, crosswalk_s: np.ndarray) -> dict:
    """[P] arrays of initial pedestrian state: waiting at a kerb ahead of the ego.

    `dormant`: without a crosswalk on the road, a pedestrian that does not jaywalk
    (`jaywalk_prob`) waits at the kerb and never crosses.
    """
    count = num_pedestrians(config)
    has_crosswalk = crosswalk_s < NO_CROSSWALK
    draws = _Draws(rng, 2 * count)
    jaywalk = draws.random(count) < config.jaywalk_prob
    dormant = ~jaywalk & (not has_crosswalk.any())
    anywhere = draws.uniform(EGO_START_S + 20.0, EGO_START_S + 250.0, count)
    if has_crosswalk.any():
        which = rng.integers(0, int(has_crosswalk.sum()), count)
        draws = _Draws(rng, 4 * count)
        at_crosswalk = crosswalk_s[which] + draws.uniform(-1.5, 1.5, count)
    else:
        draws = _Draws(rng, 3 * count)
        at_crosswalk = anywhere
    return dict(
        s=np.where(jaywalk, anywhere, at_crosswalk),
        dormant=dormant,
        side=np.where(draws.random(count) < 0.5, -1.0, 1.0),
        speed=draws.uniform(0.9, 1.7, count),
        start_rate=draws.uniform(0.05, 0.4, count),  # chance per second of starting to cross
    )
