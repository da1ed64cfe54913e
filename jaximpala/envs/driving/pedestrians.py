"""Pedestrians: wait at a kerb, cross the road at a random moment and pace, then reappear.

Most cross at crosswalks; a `jaywalk_prob` share cross anywhere. A waiting pedestrian starts
crossing with a per-pedestrian rate (a memoryless, stochastic start time). Finished pedestrians
(and waiting ones the ego has left behind) reappear at a kerb 30-180 m ahead of the ego.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaximpala.envs.driving.noise import StepNoise
from jaximpala.envs.driving.scenario import NO_CROSSWALK

WAITING, CROSSING = 0, 1
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
    phase: np.ndarray  # WAITING or CROSSING (int64)


def kerb_offset(side: np.ndarray, half_width: np.ndarray) -> np.ndarray:
    """[N, P] lateral offset where a pedestrian walking towards `side` waits."""
    return -side * (half_width[:, None] + KERB_OFFSET)


def on_road(peds: Pedestrians, half_width: np.ndarray) -> np.ndarray:
    """[N, P] bool: the pedestrian is on the carriageway. half_width: [N]."""
    return (peds.phase == CROSSING) & (np.abs(peds.d) < half_width[:, None] + 0.5 * SIZE)


def blocked(peds: Pedestrians, vehicles: dict[str, np.ndarray], env: np.ndarray,
            who: np.ndarray):
    """Whether vehicles stand in the way of pedestrians `who` of envs `env` ([Q] ints each).
    Returns three [Q] bool arrays:
    `in_stride` - the next stride would step into a vehicle box (exact, no margin: a vehicle
    stopped a gap short of the pedestrian never blocks it, so the two cannot deadlock);
    `approaching` - a moving vehicle whose lane band the pedestrian is about to enter is less
    than 2 s (plus 5 m) from the pedestrian's crossing line, so the pedestrian waits at the
    kerb or on the lane line instead of stepping out in front of it. A vehicle that has
    stopped to yield never counts, so yielding cannot deadlock either;
    `waited_for` - a vehicle in any lane, moving or standing, is within 9 m (plus 2 s) of
    the crossing line: a pedestrian still at the kerb lets it go first, so a car waiting at
    a busy crosswalk gets its turn (the kerb is off the road, so this cannot deadlock).

    vehicles: [N, V] arrays s, d, half_length, half_width, speed, valid (road-aligned boxes)."""
    ped_d, side = peds.d[env, who][:, None], peds.side[env, who][:, None]
    ahead = peds.s[env, who][:, None] - vehicles["s"][env]  # ped ahead of vehicle centre
    half_length, half_width = vehicles["half_length"][env], vehicles["half_width"][env]
    valid, vehicle_d = vehicles["valid"][env], vehicles["d"][env]
    stride = np.abs((ped_d + side * 0.8) - vehicle_d)
    in_stride = (np.abs(ahead) < half_length + 0.5 * SIZE) & (stride < half_width + 0.5 * SIZE)
    look = np.abs((ped_d + side * 1.5) - vehicle_d)
    speed = np.maximum(vehicles["speed"][env], 0.0)
    not_past = valid & (ahead > -half_length - 1.0)
    nose_gap = ahead - half_length  # from the vehicle's front to the crossing line
    in_band = not_past & (look < half_width + 1.0)
    approaching = in_band & (speed > 1.0) & (nose_gap < 5.0 + 2.0 * speed)
    waited_for = not_past & (nose_gap < 9.0 + 2.0 * speed)
    return (
        (in_stride & valid).any(axis=1), approaching.any(axis=1), waited_for.any(axis=1)
    )


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
    while a vehicle waits close to its crossing line.

    half_width, ego_s: [N]; crosswalk_s: [N, C] sorted (NO_CROSSWALK pads);
    vehicles: see `blocked`; noise: this step's random numbers.
    """
    start_draw = noise.uniform(STREAM_START, peds.s.shape[1])
    starts = (peds.phase == WAITING) & (start_draw < 1.0 - np.exp(-peds.start_rate * dt))
    # Only pedestrians crossing or about to start look at the vehicles (about a tenth).
    env, who = np.nonzero(starts | (peds.phase == CROSSING))
    stopped = np.zeros(peds.s.shape, bool)
    waited_for = np.zeros(peds.s.shape, bool)
    if env.size:
        in_stride, approaching, waited = blocked(peds, vehicles, env, who)
        stopped[env, who] = in_stride | approaching
        waited_for[env, who] = waited
    phase = np.where(starts & ~stopped & ~waited_for, CROSSING, peds.phase)
    walking = (phase == CROSSING) & ~stopped
    d = np.where(walking, peds.d + peds.side * peds.speed * dt, peds.d)
    finished = (phase == CROSSING) & (peds.side * d > half_width[:, None] + KERB_OFFSET)
    left_behind = (phase == WAITING) & (peds.s < ego_s[:, None] - LEFT_BEHIND)
    moved = Pedestrians(s=peds.s, d=d, side=peds.side, speed=peds.speed,
                        start_rate=peds.start_rate, phase=phase)
    respawn = finished | left_behind
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
    jaywalk = (uniforms[..., 1] < jaywalk_prob) | ~has_crosswalk
    new_side = np.where(uniforms[..., 3] < 0.5, -1.0, 1.0)
    for name, value in (
        ("s", np.where(jaywalk, target, crosswalk + 3.0 * (uniforms[..., 2] - 0.5))),
        ("side", new_side),
        ("d", kerb_offset(new_side, half_width)),
        ("phase", WAITING),
        ("speed", 0.9 + 0.8 * uniforms[..., 4]),
    ):
        updated = getattr(peds, name).copy()
        updated[rows] = np.where(respawn, value, updated[rows])
        setattr(peds, name, updated)
    return peds
