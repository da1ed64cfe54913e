import numpy as np
import pytest

from jaximpala.envs.driving import reward
from jaximpala.envs.driving.config import REWARD_TERMS, RewardWeights


def _events(**changes):
    base = dict(
        progress=np.array([0.0]), max_progress=np.array([np.inf]), goal=np.array([False]),
        collision=np.array([False]), offroad=np.array([False]), speed=np.array([10.0]),
        speed_limit=np.array([20.0]), old_lane=np.array([1]), new_lane=np.array([1]),
        signal=np.array([0]),
        solid_here=np.array([False]), in_occupied_crosswalk=np.array([False]),
        occupied_crosswalk_gap=np.array([np.inf]),
        headway=np.array([np.inf]), time_to_collision=np.array([np.inf]),
        lane_offset=np.array([0.0]), jerk=np.array([0.0]), lateral_accel=np.array([0.0]),
        steer_rate=np.array([0.0]), max_steer_rate=1.0,
    )
    base.update({k: np.array([v]) if k != "max_steer_rate" else v for k, v in changes.items()})
    return reward.Events(**base)


CASES = {
    "progress": (dict(progress=2.5), 2.5),
    "goal": (dict(goal=True), 1.0),
    "collision": (dict(collision=True), 1.0),
    "offroad": (dict(offroad=True), 1.0),
    "speeding": (dict(speed=25.0), 0.25),
    "unsignalled_lane_change": (dict(new_lane=2, signal=2), 1.0),
    "solid_line": (dict(new_lane=0, signal=2, solid_here=True), 1.0),
    "crosswalk_yield": (dict(in_occupied_crosswalk=True, speed=3.0), 1.0),
    # 10 m at 10 m/s: 1 s to reach it, a third of the horizon
    "crosswalk_approach": (dict(occupied_crosswalk_gap=10.0), 1.0 - 1.0 / reward.TTC_HORIZON),
    "tailgating": (dict(headway=0.25 * reward.TAILGATE_HEADWAY), 0.75),
    "time_to_collision": (dict(time_to_collision=0.5 * reward.TTC_HORIZON), 0.5),
    "lane_centering": (dict(lane_offset=-0.4, progress=2.0), 0.8),
    "jerk": (dict(jerk=20.0), 4.0),
    "lateral_acceleration": (dict(lateral_accel=2.0), 0.25),
    "steering_rate": (dict(steer_rate=0.5), 0.25),
}


# lane_centering is charged per metre moved, so progress fires beside it
ALONGSIDE = {"lane_centering": ["progress"]}


@pytest.mark.parametrize("term", REWARD_TERMS)
def test_each_term_fires_alone_in_its_crafted_situation(term):
    changes, expected = CASES[term]
    raw = reward.terms(_events(**changes))
    assert raw[term][0] == pytest.approx(expected)
    others = [name for name in REWARD_TERMS if name != term and raw[name][0] != 0]
    assert others == ALONGSIDE.get(term, [])


def test_lane_centering_costs_nothing_standing_still_or_on_the_centre_line():
    assert reward.terms(_events(lane_offset=0.9))["lane_centering"][0] == 0.0
    assert reward.terms(_events(progress=1.5))["lane_centering"][0] == 0.0
    reversing = reward.terms(_events(lane_offset=0.5, progress=-1.0))
    assert reversing["lane_centering"][0] == 0.5


def test_progress_is_capped_at_max_progress_and_lane_centering_is_not():
    raw = reward.terms(_events(progress=2.5, max_progress=1.8, lane_offset=0.5))
    assert raw["progress"][0] == 1.8
    assert raw["lane_centering"][0] == pytest.approx(1.25)  # per metre actually moved
    assert reward.terms(_events(progress=1.5, max_progress=1.8))["progress"][0] == 1.5
    assert reward.terms(_events(progress=-1.0, max_progress=1.8))["progress"][0] == -1.0


def test_quiet_step_earns_nothing():
    raw = reward.terms(_events())
    assert all(raw[name][0] == 0 for name in REWARD_TERMS)


def test_signalled_lane_change_and_stopping_at_a_crosswalk_are_fine():
    raw = reward.terms(_events(new_lane=2, signal=1))
    assert raw["unsignalled_lane_change"][0] == 0
    assert reward.terms(_events(in_occupied_crosswalk=True, speed=0.2))["crosswalk_yield"][0] == 0


@pytest.mark.parametrize("gap, speed, expected", [
    (30.0, 10.0, 0.0),  # 3 s away: at the horizon
    (45.0, 10.0, 0.0),  # beyond it
    (15.0, 10.0, 0.5),
    (0.0, 10.0, 1.0),  # inside the occupied crosswalk, moving
    (0.0, 0.4, 0.0),  # standing at (or in) it costs nothing
    (5.0, -3.0, 0.0),  # reversing away from it
])
def test_crosswalk_approach_by_hand(gap, speed, expected):
    raw = reward.terms(_events(occupied_crosswalk_gap=gap, speed=speed))
    assert raw["crosswalk_approach"][0] == pytest.approx(expected)


def test_weighted_terms_sum_to_the_reward():
    weights = RewardWeights()
    raw = reward.terms(_events(progress=3.0, speed=30.0, collision=True))
    contributions = reward.weighted(raw, weights)
    assert contributions["collision"][0] == weights.collision
    assert reward.total(contributions)[0] == pytest.approx(
        3.0 * weights.progress + 0.5 * weights.speeding + weights.collision)


def test_violations_count_each_lane_change_and_each_spell_once():
    """Speeding over steps 1-3 and 5, an unsignalled lane change across a solid line at step
    4: two speeding spells, one lane change, one solid line."""
    steps = [dict(), dict(speed=25.0), dict(speed=26.0), dict(speed=25.0),
             dict(new_lane=2, solid_here=True), dict(speed=30.0)]
    in_spell = np.zeros((1, len(reward.SPELL_VIOLATIONS)), bool)
    totals = dict.fromkeys(reward.VIOLATIONS, 0.0)
    for changes in steps:
        counts, in_spell = reward.violations(reward.terms(_events(**changes)), in_spell)
        for name, count in counts.items():
            totals[name] += count[0]
    assert totals == {"speeding": 2.0, "unsignalled_lane_change": 1.0, "solid_line": 1.0,
                      "crosswalk_yield": 0.0}


def test_a_crosswalk_spell_counts_once_and_an_episode_start_clears_spells():
    inside = reward.terms(_events(in_occupied_crosswalk=True, speed=3.0))
    fresh = np.zeros((1, len(reward.SPELL_VIOLATIONS)), bool)
    counts, in_spell = reward.violations(inside, fresh)
    assert counts["crosswalk_yield"][0] == 1.0
    counts, in_spell = reward.violations(inside, in_spell)
    assert counts["crosswalk_yield"][0] == 0.0
    assert reward.violations(inside, fresh)[0]["crosswalk_yield"][0] == 1.0
