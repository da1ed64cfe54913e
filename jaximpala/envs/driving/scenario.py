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

import numba
import numpy as np
from numba.extending import register_jitable

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


@functools.lru_cache(maxsize=16)
def _condition_cdf(probs: tuple[float, float, float]) -> np.ndarray:
    """Cumulative road-condition probabilities, normalised exactly as `Generator.choice`
    normalises `p`, so drawing with it consumes and returns what `choice` would."""
    cdf = np.asarray(probs, dtype=np.float64).cumsum()
    cdf /= cdf[-1]
    return cdf


def _max_segments(size: int) -> int:
    """Road segments drawn per scenario: enough 40 m (shortest) segments to cover the grid."""
    return int(np.ceil(size * GRID_STEP / 40.0)) + 1


def _generate_one(config: DrivingConfig, rng: np.random.Generator) -> dict:
    """One scenario as a dict of scalars and 1-D arrays.

    Python makes every `rng` call, in a fixed order (the order, the calls and so the scenario
    of a seed are those of the array code this replaced, bit for bit); compiled kernels turn
    the uniform doubles into the scenario. A uniform(low, high) quantity is
    low + (high - low) * u of its double u, which is how numpy's `Generator.uniform` maps it.
    """
    size = grid_size(config)
    noise_key = rng.integers(0, 2**63, dtype=np.uint64)
    road_u = rng.random(4 * _max_segments(size))
    num_lanes = int(rng.integers(config.num_lanes_min, config.num_lanes_max + 1))
    # lane width, speed limit, condition, friction, roughness, sensor range, sensor noise
    u = rng.random(7).tolist()
    lane_width = _uniform(config.lane_width_min, config.lane_width_max, u[0])
    speed_limit = _uniform(config.speed_limit_min, config.speed_limit_max, u[1])
    # = rng.choice(len(ROAD_CONDITIONS), p=condition_probs), without its argument checks
    condition = int(_condition_cdf(config.condition_probs).searchsorted(u[2], "right"))
    friction = _uniform(*FRICTION_RANGES[ROAD_CONDITIONS[condition]], u[3])
    goal_s = EGO_START_S + config.route_length
    curvature, slope, solid = np.empty(size), np.empty(size), np.empty(size, np.bool_)
    crosswalk_s = np.full(config.crosswalks_max, NO_CROSSWALK)
    if config.crosswalks_max > 0:
        count = int(rng.integers(1, config.crosswalks_max + 1))
        crosswalk_u = rng.random(config.crosswalks_max)
    else:
        count, crosswalk_u = 0, np.empty(0)
    # Crosswalks not right at the start (room to reach speed) nor at the goal; scaled for
    # short routes.
    route = config.route_length
    crosswalk_range = (EGO_START_S + min(50.0, route / 4), goal_s - min(20.0, route / 10))
    crosswalks = _road_kernel(road_u, config.max_curvature, config.max_slope, crosswalk_u,
                              *crosswalk_range, count, curvature, slope, solid, crosswalk_s)
    ego_lane = int(rng.integers(0, num_lanes))
    ego_speed = rng.uniform(0.0, 0.6) * speed_limit
    traffic = _traffic(config, rng, num_lanes, speed_limit)
    pedestrians = _pedestrians(config, rng, crosswalk_s, crosswalks)
    return dict(
        noise_key=noise_key, curvature=curvature, slope=slope, solid=solid, num_lanes=num_lanes,
        lane_width=lane_width, speed_limit=speed_limit, condition=condition, friction=friction,
        roughness=_uniform(0.0, config.max_roughness, u[4]),
        sensor_range=_uniform(config.sensor_range_min, config.sensor_range_max, u[5]),
        sensor_noise=_uniform(0.0, config.max_sensor_noise, u[6]), goal_s=goal_s,
        crosswalk_s=crosswalk_s, ego_lane=ego_lane, ego_speed=ego_speed, traffic=traffic,
        pedestrians=pedestrians,
    )


@register_jitable  # also called from the kernels below
def _uniform(low, high, u):
    """The uniform(low, high) quantity of the double u in [0, 1)."""
    return low + (high - low) * u


@numba.njit(cache=True)
def _road_kernel(road_u, max_curvature, max_slope, crosswalk_u, crosswalk_low, crosswalk_high,
                 count, curvature, slope, solid, crosswalk_s):
    """The road of a scenario; returns how many crosswalks it has.

    Geometry: straights and arcs of 40-120 m, piecewise-constant curvature and slope, from
    road_u [4 S] (segment lengths, straight-or-arc, curvatures, slopes; S segments). The start
    is straight and flat so every episode begins in a calm state.
    Crosswalks: of `count` candidates (the first of the sorted uniform draws crosswalk_u [C]
    over [crosswalk_low, crosswalk_high]), each kept at least 40 m past the last kept one;
    written sorted into crosswalk_s [C] (already NO_CROSSWALK).
    Lane dividers (solid [G]) are solid on sharp curves, and from 25 m before each crosswalk
    to its far edge (exclusive). Outputs curvature, slope [G] float, solid [G] bool."""
    segments = road_u.size // 4
    ends = np.empty(segments)
    curvatures, slopes = np.empty(segments), np.empty(segments)
    total = 0.0
    for k in range(segments):
        total += _uniform(40.0, 120.0, road_u[k])
        ends[k] = total
        if road_u[segments + k] < 0.4:
            curvatures[k] = 0.0
        else:
            curvatures[k] = _uniform(-max_curvature, max_curvature, road_u[2 * segments + k])
        slopes[k] = _uniform(-max_slope, max_slope, road_u[3 * segments + k])
    curvatures[0] = slopes[0] = 0.0
    candidates = np.sort(_uniform(crosswalk_low, crosswalk_high, crosswalk_u))
    kept = 0
    for c in range(count):
        if kept == 0 or candidates[c] - crosswalk_s[kept - 1] >= 40.0:
            crosswalk_s[kept] = candidates[c]
            kept += 1
    segment = 0
    for g in range(curvature.size):
        s = g * GRID_STEP
        while ends[segment] <= s:  # the segment whose [start, end) holds s
            segment += 1
        curvature[g], slope[g] = curvatures[segment], slopes[segment]
        solid[g] = abs(curvatures[segment]) > SOLID_CURVATURE
        for c in range(kept):
            cs = crosswalk_s[c]
            if cs - SOLID_BEFORE_CROSSWALK < s < cs + CROSSWALK_HALF_WIDTH:
                solid[g] = True
    return kept


def _traffic(config, rng, num_lanes: int, speed_limit: float) -> dict:
    """[M] arrays of initial traffic state and per-vehicle driver parameters.

    Vehicles start in free 12 m slots within [-60, +200] m of the ego; the slot next to the ego
    is kept clear. Slots that do not fit are parked FAR_AWAY and marked inactive.
    """
    count = num_traffic(config)
    lanes, offs, free_slots = _traffic_slots(num_lanes)
    chosen = rng.permutation(free_slots)[:count]
    u = rng.random(len(chosen) + 11 * count)
    active, lane = np.zeros(count, np.bool_), np.zeros(count, np.int64)
    values = np.empty((len(_TRAFFIC_VALUES), count))
    _traffic_kernel(chosen, lanes, offs, u, speed_limit, active, lane, values)
    fields = dict(zip(_TRAFFIC_VALUES, values, strict=True))
    return dict(active=active, lane=lane, **fields)


_TRAFFIC_VALUES = ("s", "speed", "length", "width", "desired_speed", "time_headway",
                   "max_accel", "comfort_decel", "min_gap", "politeness")


@numba.njit(cache=True)
def _traffic_kernel(chosen, lanes, offs, u, speed_limit, active, lane, values):
    """Kernel of `_traffic`: vehicle j < len(chosen) starts in slot chosen[j] ([S] lanes,
    offs: each slot's lane and offset from the ego), the rest are inactive. u: the uniform
    doubles, consumed in blocks: start jitter [len(chosen)], then [M] each of truck-or-car,
    truck length, car length, car width, desired speed, speed, time headway, max accel,
    comfort decel, min gap, politeness. Writes active, lane [M] and values [10, M] in
    _TRAFFIC_VALUES order."""
    c, m = chosen.size, active.size
    for j in range(m):
        b = c + j  # u[b + k * m]: vehicle j's number of block k
        is_truck = u[b] < 0.1
        if j < c:
            active[j] = True
            lane[j] = lanes[chosen[j]]
            values[0, j] = EGO_START_S + offs[chosen[j]] + _uniform(-2.0, 2.0, u[j])
        else:
            values[0, j] = FAR_AWAY
        if is_truck:
            values[2, j] = _uniform(8.0, 10.0, u[b + 1 * m])
            values[3, j] = 2.4
        else:
            values[2, j] = _uniform(4.0, 5.2, u[b + 2 * m])
            values[3, j] = _uniform(1.7, 2.0, u[b + 3 * m])
        desired = speed_limit * _uniform(0.75, 1.1, u[b + 4 * m])
        values[4, j] = desired
        values[1, j] = desired * _uniform(0.6, 1.0, u[b + 5 * m]) if j < c else 0.0
        values[5, j] = _uniform(1.0, 2.0, u[b + 6 * m])
        values[6, j] = _uniform(1.0, 2.0, u[b + 7 * m])
        values[7, j] = _uniform(1.5, 3.0, u[b + 8 * m])
        values[8, j] = _uniform(1.5, 3.0, u[b + 9 * m])
        values[9, j] = _uniform(0.0, 0.5, u[b + 10 * m])


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


def _pedestrians(config, rng, crosswalk_s: np.ndarray, crosswalks: int) -> dict:
    """[P] arrays of initial pedestrian state: waiting at a kerb ahead of the ego.

    crosswalk_s: [C], the first `crosswalks` of them real. `dormant`: without a crosswalk on
    the road, a pedestrian that does not jaywalk (`jaywalk_prob`) waits at the kerb and never
    crosses.
    """
    count = num_pedestrians(config)
    first_u = rng.random(2 * count)  # jaywalk or not, where a jaywalker waits
    if crosswalks > 0:
        which = rng.integers(0, crosswalks, count)
        rest_u = rng.random(4 * count)  # crosswalk jitter, side, speed, start rate
    else:
        which = np.zeros(count, np.int64)
        rest_u = rng.random(3 * count)  # side, speed, start rate
    dormant = np.empty(count, np.bool_)
    values = np.empty((len(_PEDESTRIAN_VALUES), count))
    _pedestrian_kernel(first_u, rest_u, which, crosswalk_s, crosswalks > 0,
                       config.jaywalk_prob, dormant, values)
    return dict(dormant=dormant, **dict(zip(_PEDESTRIAN_VALUES, values, strict=True)))


_PEDESTRIAN_VALUES = ("s", "side", "speed", "start_rate")


@numba.njit(cache=True)
def _pedestrian_kernel(first_u, rest_u, which, crosswalk_s, has_crosswalk, jaywalk_prob,
                       dormant, values):
    """Kernel of `_pedestrians`: jaywalkers wait anywhere 20-250 m ahead, the others at
    crosswalk which[j] (or, without crosswalks, where a jaywalker would, dormant).
    first_u [2 P], rest_u [4 P] or [3 P] as drawn there; writes dormant [P] and values
    [4, P] in _PEDESTRIAN_VALUES order (side -1 or +1, chance per second of starting to
    cross)."""
    p = dormant.size
    skip = p if has_crosswalk else 0  # the crosswalk jitter block
    for j in range(p):
        jaywalk = first_u[j] < jaywalk_prob
        dormant[j] = not jaywalk and not has_crosswalk
        low, high = EGO_START_S + 20.0, EGO_START_S + 250.0
        anywhere = _uniform(low, high, first_u[p + j])
        if jaywalk or not has_crosswalk:
            values[0, j] = anywhere
        else:
            values[0, j] = crosswalk_s[which[j]] + _uniform(-1.5, 1.5, rest_u[j])
        values[1, j] = -1.0 if rest_u[skip + j] < 0.5 else 1.0
        values[2, j] = _uniform(0.9, 1.7, rest_u[skip + p + j])
        values[3, j] = _uniform(0.05, 0.4, rest_u[skip + 2 * p + j])
