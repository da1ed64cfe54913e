"""Reward: a weighted sum of named objectives, every term reported each step.

Raw terms (before weighting), all [N] float64:
  progress                 metres moved along the route this step, at most `max_progress`
                           (the distance at the config's `progress_speed_cap`, if set)
  goal                     1 on reaching the goal
  collision, offroad       1 on the step it happens (the episode ends)
  speeding                 relative excess over the speed limit, max(0, |v| - limit) / limit
  unsignalled_lane_change  1 when the ego's centre enters another lane without the matching
                           turn signal on
  solid_line               1 when the ego's centre crosses a solid lane divider
  crosswalk_yield          1 per step moving (> 0.5 m/s) through a crosswalk that a pedestrian
                           is crossing
  crosswalk_approach       shortfall of the time to reach the next crosswalk, while a
                           pedestrian is crossing it, below TTC_HORIZON: max(0, 1 - t /
                           TTC_HORIZON), t the gap from the ego's front over its speed (0
                           inside it; no cost below 0.5 m/s): a shaping term for slowing
                           down before an occupied crosswalk, where crosswalk_yield only
                           charges driving through it (not a violation)
  tailgating               shortfall of the time headway to the vehicle ahead below
                           TAILGATE_HEADWAY, max(0, 1 - headway / TAILGATE_HEADWAY): a
                           shaping term for safe following distance (not counted among the
                           violations, so violations per km stay comparable across runs)
  time_to_collision        shortfall of the time to collision with a vehicle ahead below
                           TTC_HORIZON, max(0, 1 - ttc / TTC_HORIZON), where ttc is the gap
                           over the closing speed: a shaping term for braking in time, zero
                           when following at the leader's speed or falling back (a shaping
                           term like tailgating, not a violation)
  lane_centering           metres moved times the distance of the ego's centre from its
                           lane's centre line in half lane widths (0 on the centre line, 1 on
                           a divider): a shaping term against hovering between lanes; a crisp
                           lane change pays little. Per metre, not per step, so it does not
                           reward finishing sooner (a per-step cost does: experiments/README.md,
                           run 39)
  jerk                     (change of longitudinal acceleration per second / 10 m/s^3)^2
  lateral_acceleration     (lateral acceleration / 4 m/s^2)^2
  steering_rate            (front wheel angle rate / maximum rate)^2
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaximpala.envs.driving.config import REWARD_TERMS, RewardWeights

SIGNAL_NONE, SIGNAL_LEFT, SIGNAL_RIGHT = 0, 1, 2
YIELD_SPEED = 0.5
TAILGATE_HEADWAY = 1.0  # s: closer than this behind a vehicle is tailgating
# s: closing on a vehicle this soon before contact costs; 3 s is a common threshold for a
# critical time to collision in driver-assistance studies
TTC_HORIZON = 3.0


@dataclass
class Events:
    """Per-step facts the reward is computed from; every field [N]."""

    progress: np.ndarray
    max_progress: np.ndarray  # metres of progress this step that earn reward (inf: no cap)
    goal: np.ndarray  # bool
    collision: np.ndarray  # bool
    offroad: np.ndarray  # bool
    speed: np.ndarray
    speed_limit: np.ndarray
    old_lane: np.ndarray  # int
    new_lane: np.ndarray  # int
    signal: np.ndarray  # int: SIGNAL_*
    solid_here: np.ndarray  # bool: dividers are solid at the ego
    in_occupied_crosswalk: np.ndarray  # bool
    occupied_crosswalk_gap: np.ndarray  # m from the ego's front to the next crosswalk while a
    # pedestrian is crossing it (0 inside it; inf: none ahead, or nobody on it)
    headway: np.ndarray  # s to the vehicle ahead at the ego's speed (inf: none, or crawling)
    time_to_collision: np.ndarray  # s to contact at the closing speed (inf: not closing)
    lane_offset: np.ndarray  # ego centre from its lane's centre line, in half lane widths
    jerk: np.ndarray
    lateral_accel: np.ndarray
    steer_rate: np.ndarray
    max_steer_rate: float


def terms(events: Events) -> dict[str, np.ndarray]:
    """Raw reward terms, each [N] float64, keyed by REWARD_TERMS."""
    direction = np.sign(events.new_lane - events.old_lane)
    changed = direction != 0
    signalled = ((direction > 0) & (events.signal == SIGNAL_LEFT)) | (
        (direction < 0) & (events.signal == SIGNAL_RIGHT)
    )
    excess = np.maximum(np.abs(events.speed) - events.speed_limit, 0.0)
    return {
        "progress": np.minimum(events.progress, events.max_progress),
        "goal": events.goal.astype(np.float64),
        "collision": events.collision.astype(np.float64),
        "offroad": events.offroad.astype(np.float64),
        "speeding": excess / events.speed_limit,
        "unsignalled_lane_change": (changed & ~signalled).astype(np.float64),
        "solid_line": (changed & events.solid_here).astype(np.float64),
        "crosswalk_yield": (
            events.in_occupied_crosswalk & (np.abs(events.speed) > YIELD_SPEED)
        ).astype(np.float64),
        "crosswalk_approach": _crosswalk_approach(events),
        "tailgating": np.maximum(1.0 - events.headway / TAILGATE_HEADWAY, 0.0),
        "time_to_collision": np.maximum(1.0 - events.time_to_collision / TTC_HORIZON, 0.0),
        "lane_centering": np.abs(events.lane_offset) * np.abs(events.progress),
        "jerk": (events.jerk / 10.0) ** 2,
        "lateral_acceleration": (events.lateral_accel / 4.0) ** 2,
        "steering_rate": (events.steer_rate / events.max_steer_rate) ** 2,
    }


def _crosswalk_approach(events: Events) -> np.ndarray:
    """[N] max(0, 1 - t / TTC_HORIZON), t the time to reach the occupied crosswalk ahead at
    the current speed (inf below YIELD_SPEED: standing at the line costs nothing)."""
    moving = events.speed > YIELD_SPEED
    time_to_reach = np.divide(events.occupied_crosswalk_gap, events.speed,
                              out=np.full(events.speed.shape, np.inf), where=moving)
    return np.maximum(1.0 - time_to_reach / TTC_HORIZON, 0.0)


def weighted(raw: dict[str, np.ndarray], weights: RewardWeights) -> dict[str, np.ndarray]:
    """Each term times its weight; the reward is the sum of the returned arrays."""
    w = weights.as_dict()
    return {name: w[name] * raw[name] for name in REWARD_TERMS}


def total(contributions: dict[str, np.ndarray]) -> np.ndarray:
    """[N] reward: the sum of the weighted terms, in REWARD_TERMS order."""
    result = np.zeros_like(contributions[REWARD_TERMS[0]])
    for name in REWARD_TERMS:
        result = result + contributions[name]
    return result


# Traffic violations, as counted for `violations per km` (evaluation): a lane change or a
# solid-line crossing is one violation each time it happens; speeding and failing to yield
# last over steps, so each spell of them counts once, on its first step.
VIOLATIONS = ("speeding", "unsignalled_lane_change", "solid_line", "crosswalk_yield")
SPELL_VIOLATIONS = ("speeding", "crosswalk_yield")


def violations(raw: dict[str, np.ndarray], in_spell: np.ndarray
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Violations committed this step, and which spells are on after it.

    Args:
      raw: this step's raw terms (`terms`), each [N].
      in_spell: [N, len(SPELL_VIOLATIONS)] bool, the spells on before this step (all False
        at an episode's start).

    Returns:
      `(counts, in_spell)`: counts maps each name in VIOLATIONS to [N] float64 0/1; the new
      `[N, len(SPELL_VIOLATIONS)]` spell flags.
    """
    now = np.stack([raw[name] > 0.0 for name in SPELL_VIOLATIONS], axis=1)
    onsets = dict(zip(SPELL_VIOLATIONS, (now & ~in_spell).T, strict=True))
    counts = {name: onsets.get(name, raw[name] > 0.0).astype(np.float64)
              for name in VIOLATIONS}
    return counts, now
