import numpy as np
import pytest

from jaximpala.envs.driving import pedestrians
from jaximpala.envs.driving.pedestrians import CROSSING, DORMANT, WAITING, Pedestrians

HALF_WIDTH = np.array([3.5])
NO_VEHICLES = {k: np.zeros((1, 0)) for k in ("s", "d", "half_length", "half_width", "speed")}
NO_VEHICLES["valid"] = np.zeros((1, 0), bool)


def _peds(s, d, phase, side=1.0, speed=1.5, start_rate=0.0):
    one = lambda v: np.array([[float(v)]])
    return Pedestrians(s=one(s), d=one(d), side=one(side), speed=one(speed),
                       start_rate=one(start_rate), phase=np.array([[phase]]))


class ConstantNoise:
    """Every random draw is `value`: lets a test steer each stochastic decision."""

    def __init__(self, value):
        self.value = value

    def uniform(self, stream, size, rows=None):
        return np.full((1 if rows is None else len(rows), size), self.value)


def _step(peds, vehicles=NO_VEHICLES, u=0.5, ego_s=0.0, jaywalk_prob=0.0):
    return pedestrians.step(peds, HALF_WIDTH, np.array([[50.0, 1e9]]), np.array([ego_s]),
                            jaywalk_prob, vehicles, ConstantNoise(u), 0.1)


def _car(s, d, speed=0.0):
    return {"s": np.array([[s]]), "d": np.array([[d]]), "half_length": np.array([[2.25]]),
            "half_width": np.array([[0.95]]), "speed": np.array([[speed]]),
            "valid": np.ones((1, 1), bool)}


def test_crossing_pedestrian_walks_at_its_speed():
    p = _step(_peds(50.0, -2.0, CROSSING, speed=1.5))
    assert p.d[0, 0] == pytest.approx(-2.0 + 0.15)
    assert pedestrians.on_road(p.phase[0, 0], p.d[0, 0], HALF_WIDTH[0])


def test_start_is_stochastic_with_the_given_rate():
    waiting = _peds(50.0, -4.5, WAITING, start_rate=2.0)  # P(start in 0.1 s) = 1 - e^-0.2
    threshold = 1 - np.exp(-0.2)
    assert _step(waiting, u=threshold - 1e-3).phase[0, 0] == CROSSING
    assert _step(waiting, u=threshold + 1e-3).phase[0, 0] == WAITING


def test_waits_for_an_approaching_car_and_never_walks_into_one():
    waiting = _peds(50.0, -4.5, WAITING, start_rate=100.0)
    assert _step(waiting, _car(40.0, -1.75, speed=10.0)).phase[0, 0] == WAITING
    assert _step(waiting, _car(80.0, -1.75, speed=10.0)).phase[0, 0] == CROSSING
    # a car waiting (stopped) 5 m before the crossing line gets its turn first
    assert _step(waiting, _car(42.75, -1.75, speed=0.0)).phase[0, 0] == WAITING
    # ... but one already on the road does not stop for a standing car (no deadlock)
    on_road = _peds(50.0, -1.0, CROSSING)
    assert _step(on_road, _car(42.75, 1.75, speed=0.0)).d[0, 0] > -1.0
    beside = _peds(50.0, -3.2, CROSSING)  # next stride would enter the car's side
    assert _step(beside, _car(50.0, -1.75)).d[0, 0] == -3.2


def test_finished_pedestrians_reappear_ahead_of_the_ego_at_a_kerb():
    done = _peds(50.0, 4.55, CROSSING, side=1.0)
    # no crosswalk beyond the target (30 + 150 * 0.9 = 165 m): a jaywalker crosses there
    p = _step(done, u=0.9, ego_s=0.0, jaywalk_prob=1.0)
    assert p.phase[0, 0] == WAITING
    assert p.s[0, 0] == pytest.approx(165.0)
    assert p.side[0, 0] == 1.0 and p.d[0, 0] == pytest.approx(-4.5)
    # the crosswalk at 50 m is beyond a target of 30 + 150 * 0.1 = 45 m: it is used
    p = _step(done, u=0.1, ego_s=0.0, jaywalk_prob=0.0)
    assert p.phase[0, 0] == WAITING and 48.5 <= p.s[0, 0] <= 51.5


def test_with_no_crosswalk_ahead_only_jaywalkers_cross():
    done = _peds(50.0, 4.55, CROSSING, side=1.0)
    p = _step(done, u=0.9, ego_s=0.0, jaywalk_prob=0.0)
    # none beyond 165 m and jaywalking is off: the pedestrian stays on the kerb there
    assert p.phase[0, 0] == DORMANT
    assert p.s[0, 0] == pytest.approx(165.0) and p.d[0, 0] == pytest.approx(-4.5)
    eager = Pedestrians(**{**vars(p), "start_rate": np.array([[1e6]])})
    for _ in range(20):
        eager = _step(eager, u=0.0, ego_s=0.0, jaywalk_prob=0.0)
    assert eager.phase[0, 0] == DORMANT and eager.d[0, 0] == pytest.approx(-4.5)
    # left behind, it is respawned like a waiting pedestrian
    behind = _step(eager, u=0.0, ego_s=200.0, jaywalk_prob=0.0)
    assert behind.s[0, 0] == pytest.approx(230.0)


def test_scenarios_without_crosswalks_have_crossers_only_when_jaywalking_is_on():
    from jaximpala.envs.driving.config import preset
    from jaximpala.envs.driving.scenario import generate_one

    off = generate_one(preset("easy", crosswalks_max=0, jaywalk_prob=0.0), 3)
    assert off["pedestrians"]["dormant"].all()
    on = generate_one(preset("easy", crosswalks_max=0, jaywalk_prob=1.0), 3)
    assert not on["pedestrians"]["dormant"].any()
