import numpy as np
import pytest

from jaximpala.envs.driving import spaces
from jaximpala.envs.driving.config import DrivingConfig


def _action(continuous, discrete=((2, 0),)):
    return {"continuous": np.array(continuous, float), "discrete": np.array(discrete)}


def test_out_of_range_actions_are_clipped():
    steer, throttle, brake, gear, signal = spaces.parse_actions(
        _action([[3.0, -1.0, 2.0]], [[7, -2]]), 1)
    assert (steer[0], throttle[0], brake[0], gear[0], signal[0]) == (1.0, 0.0, 1.0, 2, 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_actions_raise(bad):
    with pytest.raises(ValueError, match="must be finite"):
        spaces.parse_actions(_action([[0.0, bad, 0.0]]), 1)
    with pytest.raises(ValueError, match="must be finite"):
        spaces.parse_actions(_action([[0.0, 0.0, 0.0]], [[bad, 0]]), 1)


def test_combined_pedal_is_throttle_above_zero_and_brake_below():
    steer, throttle, brake, _, _ = spaces.parse_actions(
        _action([[0.2, 0.7], [0.0, -0.4], [-2.0, -3.0]], [[2, 0]] * 3), 3, "combined")
    np.testing.assert_array_equal(steer, [0.2, 0.0, -1.0])
    np.testing.assert_array_equal(throttle, [0.7, 0.0, 0.0])
    np.testing.assert_array_equal(brake, [0.0, 0.4, 1.0])  # -3 is clipped to a full brake
    with pytest.raises(ValueError, match=r"shape \(1, 2\) with combined pedals"):
        spaces.parse_actions(_action([[0.0, 0.0, 0.0]]), 1, "combined")
    box = spaces.action_space("combined")["continuous"]
    assert box.shape == (2,) and list(box.low) == [-1, -1] and list(box.high) == [1, 1]


def test_automatic_gearbox_drives_and_the_discrete_action_is_the_signal():
    space = spaces.action_space(gearbox="automatic")["discrete"]
    assert list(space.nvec) == [3]
    _, _, _, gear, signal = spaces.parse_actions(
        _action([[0.0, 0.5, 0.0]] * 3, [[0], [1], [5]]), 3, gearbox="automatic")
    np.testing.assert_array_equal(gear, [spaces.GEAR_DRIVE] * 3)
    np.testing.assert_array_equal(signal, [0, 1, 2])  # 5 is clipped to the last signal
    with pytest.raises(ValueError, match=r"shape \(1, 1\) with a automatic gearbox"):
        spaces.parse_actions(_action([[0.0, 0.0, 0.0]]), 1, gearbox="automatic")


def test_wrong_shapes_and_keys_raise():
    with pytest.raises(ValueError, match="shape"):
        spaces.parse_actions(_action([[0.0, 0.0]]), 1)
    with pytest.raises(ValueError, match="keys"):
        spaces.parse_actions({"continuous": np.zeros((1, 3))}, 1)


def test_observation_keys_follow_config():
    full = spaces.observation_space(DrivingConfig())
    assert set(full.spaces) == {"camera", "lidar", "state"}
    assert full["camera"].shape == (64, 64, 5) and full["camera"].dtype == np.uint8
    assert full["lidar"].shape == (64,) and full["state"].shape == (len(spaces.STATE_FIELDS),)
    assert set(spaces.observation_space(DrivingConfig(camera=False)).spaces) == {"lidar", "state"}
