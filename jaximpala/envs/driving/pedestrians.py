"""Pedestrians: wait at a kerb, cross the road at a random moment and pace, then reappear.

Most cross at crosswalks; a `jaywalk_prob` share cross anywhere. A waiting pedestrian starts
crossing with a per-pedestrian rate (a memoryless, stochastic start time). Finished pedestrians
(and waiting ones the ego has left behind) reappear at a kerb 30-180 m ahead of the ego; one
that would use a crosswalk when none is left ahead stays on the kerb (DORMANT), so past the
last crosswalk only jaywalkers cross, as `jaywalk_prob` says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba.extending import register_jitable

from jaximpala.envs.driving.noise import StepNoise
from jaximpala.envs.driving.scenario import NO_CROSSWALK

# DORMANT: no crosswalk ahead to use and not a jaywalker (`jaywalk_prob`): waits at the
# kerb without ever crossing, and is respawned like a waiting pedestrian once left behind.
WAITING, CROSSING, DORMANT = 0, 1, 2
KERB_OFFSET = 1.0  # metres beyond the road edge where pedestrians wait
SIZE = 0.6  # pedestrians are 0.6 m squares
LEFT_BEHIND = 30.0
STREAM_START, STREAM_RESPAWN = 20, 21  # noise streams


@dataclass
class Pedestrians:
    """Batched pedestrians; every field is [N, P]."""

    s: np.ndarray
    d: np.ndarray
    side: np.ndarray  # +1 walks towards +d (right kerb to left kerb), -1 the other way
    speed: np.ndarray
    start_rate: np.ndarray  # chance per second of starting to cross while waiting
    phase: np.ndarray  # WAITING, CROSSING or DORMANT (int64)


def kerb_offset(side: np.ndarray, half_width: np.ndarray) -> np.ndarray:
    """[N, P] lateral offset where a pedestrian walking towards `side` waits."""
    return -side * (half_width[:, None] + KERB_OFFSET)


@register_jitable  # called from compiled kernels
def on_road(phase, d, half_width):
    """Whether one pedestrian (its phase and lateral offset d) is on the carriageway of
    half-width half_width."""
    return phase == CROSSING and abs(d) < half_width + 0.5 * SIZE


@numba.njit(cache=True)
def _blocked(s, d, side, vehicles, i):
    """Whether vehicles stand in the way of one pedestrian (s, d, side) of env i. Returns
    (stopped, waited_for):
    stopped - its next stride would step into a vehicle box (exact, no margin: a vehicle
    stopped a gap short of the pedestrian never blocks it, so the two cannot deadlock), or a
    moving vehicle whose lane band it is about to enter is less than 2 s (plus 5 m) from
    its crossing line, so it waits at the kerb or on the lane line instead of stepping out
    in front of it (a vehicle that has stopped to yield never counts, so yielding cannot
    deadlock either);
    waited_for - a vehicle in any lane, moving or standing, is within 9 m (plus 2 s) of the
    crossing line: a pedestrian still at the kerb lets it go first, so a car waiting at a
    busy crosswalk gets its turn (the kerb is off the road, so this cannot deadlock).
    vehicles: [6, N, V] s, d, half length, half width, speed, valid (road-aligned boxes)."""
    stopped = waited_for = False
    for v in range(vehicles.shape[2]):
        if vehicles[5, i, v] == 0.0:
            continue
        ahead = s - vehicles[0, i, v]  # pedestrian ahead of the vehicle centre
        half_length, half_width = vehicles[2, i, v], vehicles[3, i, v]
        stride = abs((d + side * 0.8) - vehicles[1, i, v])
        if abs(ahead) < half_length + 0.5 * SIZE and stride < half_width + 0.5 * SIZE:
            stopped = True
        if ahead > -half_length - 1.0:  # not yet past
            speed = max(vehicles[4, i, v], 0.0)
            nose_gap = ahead - half_length  # from the vehicle's front to the crossing line
            look = abs((d + side * 1.5) - vehicles[1, i, v])
            if look < half_width + 1.0 and speed > 1.0 and nose_gap < 5.0 + 2.0 * speed:
                stopped = True
            if nose_gap < 9.0 + 2.0 * speed:
                waited_for = True
    return stopped, waited_for


@numba.njit(cache=True)
def _walk(s, d, side, speed, phase, start_draw, start_chance, half_width, ego_s, vehicles,
          dt, new_d, new_phase, respawn):
    """Kernel of `step` up to respawning: starts, stops and strides of every pedestrian
    ([N, P] arrays; start_chance = 1 - exp(-start_rate dt)); writes new_d, new_phase and
    which pedestrians respawn (finished crossing, or waiting and left behind)."""
    for i in range(s.shape[0]):
        for p in range(s.shape[1]):
            starts = phase[i, p] == WAITING and start_draw[i, p] < start_chance[i, p]
            stopped = waited_for = False
            if starts or phase[i, p] == CROSSING:  # only they look at the vehicles
                stopped, waited_for = _blocked(s[i, p], d[i, p], side[i, p], vehicles, i)
            crossing = phase[i, p] == CROSSING or (starts and not stopped and not waited_for)
            new_phase[i, p] = CROSSING if crossing else phase[i, p]
            new_d[i, p] = d[i, p] + side[i, p] * speed[i, p] * dt if (
                crossing and not stopped) else d[i, p]
            respawn[i, p] = (crossing and side[i, p] * new_d[i, p] > half_width[i] + KERB_OFFSET
                             ) or (not crossing and s[i, p] < ego_s[i] - LEFT_BEHIND)


_VEHICLE_FIELDS = ("s", "d", "half_length", "half_width", "speed", "valid")


def step(
    peds: Pedestrians,
    half_width: np.ndarray,
    crosswalk_s: np.ndarray,
    ego_s: np.ndarray,
    jaywalk_prob: float,
    vehicles: dict[str, np.ndarray],
    noise: StepNoise,
    dt: float,
) -> Pedestrians:
    """Advance pedestrians one step. A pedestrian does not step into a vehicle: it waits at
    the kerb (or pauses mid-road) while a vehicle box blocks its next stride or a moving
    vehicle is about to pass through the lane it would enter, and it does not leave the kerb
    while a vehicle waits close to its crossing line (see `_blocked`).

    half_width, ego_s: [N]; crosswalk_s: [N, C] sorted (NO_CROSSWALK pads); vehicles: [N, V]
    arrays s, d, half_length, half_width, speed, valid; noise: this step's random numbers.
    """
    start_draw = noise.uniform(STREAM_START, peds.s.shape[1])
    start_chance = 1.0 - np.exp(-peds.start_rate * dt)
    d, phase = np.empty(peds.d.shape), np.empty(peds.phase.shape, np.int64)
    respawn = np.empty(peds.s.shape, bool)
    _walk(peds.s, peds.d, peds.side, peds.speed, peds.phase, start_draw, start_chance,
          half_width, ego_s, np.stack([vehicles[k] for k in _VEHICLE_FIELDS]).astype(float),
          dt, d, phase, respawn)
    moved = Pedestrians(s=peds.s, d=d, side=peds.side, speed=peds.speed,
                        start_rate=peds.start_rate, phase=phase)
    rows = np.flatnonzero(respawn.any(axis=1))
    if rows.size:  # numbers drawn only for the envs where someone respawns
        p = peds.s.shape[1]
        uniforms = noise.uniform(STREAM_RESPAWN, 5 * p, rows=rows).reshape(rows.size, p, 5)
        moved = _respawn(moved, rows, respawn[rows], half_width[rows], crosswalk_s[rows],
                         ego_s[rows], jaywalk_prob, uniforms)
    return moved


def _respawn(peds, rows, respawn, half_width, crosswalk_s, ego_s, jaywalk_prob, uniforms):
    """Move the `respawn` [R, P] pedestrians of env rows `rows` [R] to a kerb ahead;
    half_width, ego_s [R], crosswalk_s [R, C], uniforms [R, P, 5]."""
    target = ego_s[:, None] + 30.0 + 150.0 * uniforms[..., 0]  # [R, P]
    beyond = (crosswalk_s[:, None, :] >= target[..., None]) & (
        crosswalk_s[:, None, :] < NO_CROSSWALK
    )  # [R, P, C]
    has_crosswalk = beyond.any(axis=-1)
    first = np.argmax(beyond, axis=-1)
    crosswalk = np.take_along_axis(crosswalk_s, first, axis=-1)
    jaywalk = uniforms[..., 1] < jaywalk_prob
    new_side = np.where(uniforms[..., 3] < 0.5, -1.0, 1.0)
    for name, value in (
        ("s", np.where(jaywalk | ~has_crosswalk, target,
                       crosswalk + 3.0 * (uniforms[..., 2] - 0.5))),
        ("side", new_side),
        ("d", kerb_offset(new_side, half_width)),
        ("phase", np.where(jaywalk | has_crosswalk, WAITING, DORMANT)),
        ("speed", 0.9 + 0.8 * uniforms[..., 4]),
    ):
        updated = getattr(peds, name).copy()
        updated[rows] = np.where(respawn, value, updated[rows])
        setattr(peds, name, updated)
    return peds
