import pytest

from jaximpala.envs.driving.config import (
    PRESETS,
    DrivingConfig,
    RewardWeights,
    num_pedestrians,
    num_traffic,
    preset,
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_lanes_max", -1),
        ("num_lanes_min", 0),
        ("num_lanes_max", 5),
        ("traffic_density", 1.5),
        ("pedestrian_density", -0.1),
        ("traffic_density", float("nan")),
        ("route_length", -10.0),
        ("dt", 0.0),
        ("camera_size", 8),
        ("max_episode_steps", 0),
        ("jaywalk_prob", 2.0),
        ("steering", "torque"),
        ("lane_change_signal_steps", 0),
        ("lane_change_signal_steps", 2.5),
        ("lane_assist_nudge", 0.6),
        ("lane_assist_nudge", -0.1),
        ("lane_assist_gap_time", -1.0),
        ("lane_assist_gap_time", 11.0),
        ("progress_speed_cap", 0.0),
        ("progress_speed_cap", float("nan")),
        ("progress_speed_cap", "fast"),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"driving\.{field}"):
        DrivingConfig(**{field: value})


def test_blind_spot_check_needs_lane_assist():
    with pytest.raises(ValueError, match=r"driving\.lane_assist_gap_time .* got 'angle'"):
        DrivingConfig(lane_assist_gap_time=3.0)
    DrivingConfig(lane_assist_gap_time=3.0, steering="lane_assist")


def test_lane_bounds_message_is_explicit():
    expected = r"driving\.num_lanes_max must be an integer in \[1, 4\], got -1"
    with pytest.raises(ValueError, match=expected):
        DrivingConfig(num_lanes_max=-1)


def test_min_above_max_is_rejected():
    with pytest.raises(ValueError, match="num_lanes_min"):
        DrivingConfig(num_lanes_min=3, num_lanes_max=2)


def test_condition_probabilities_must_sum_to_one():
    with pytest.raises(ValueError, match="condition_probs"):
        DrivingConfig(condition_probs=(0.5, 0.2, 0.2))


def test_all_observations_off_is_rejected():
    with pytest.raises(ValueError, match="all off"):
        DrivingConfig(camera=False, lidar=False, state=False)


def test_reward_weight_must_be_finite():
    with pytest.raises(ValueError, match=r"driving\.reward\.goal"):
        RewardWeights(goal=float("inf"))


def test_unknown_pedal_mode_names_the_choices():
    with pytest.raises(ValueError, match=r"driving\.pedals must be one of \['separate', "
                                         r"'combined'\], got 'both'"):
        DrivingConfig(pedals="both")


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match=r"driving\.preset must be one of"):
        preset("insane")


def test_presets_and_overrides():
    assert set(PRESETS) == {"easy", "default", "hard"}
    assert preset("default") == DrivingConfig()
    assert preset("hard", camera=False).camera is False
    assert preset("hard").traffic_density > preset("default").traffic_density > preset(
        "easy").traffic_density


def test_overrides_accept_plain_yaml_data_and_name_unknown_keys():
    easy = preset("easy", reward={"jerk": -0.001}, condition_probs=[0.5, 0.5, 0.0])
    assert easy.reward.jerk == -0.001
    assert easy.reward.goal == PRESETS["easy"].reward.goal
    assert easy.condition_probs == (0.5, 0.5, 0.0)
    assert easy.route_length == PRESETS["easy"].route_length
    with pytest.raises(ValueError, match=r"driving\.reward: unknown term\(s\) \['speed'\]"):
        preset("easy", reward={"speed": 1.0})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['lanes'\]"):
        preset("easy", lanes=2)


def test_config_is_frozen_and_derived_counts_are_functions():
    config = DrivingConfig()
    with pytest.raises(AttributeError):
        config.num_lanes_max = 2  # type: ignore[misc]
    # the default traffic: about 20 vehicles and 10 pedestrians
    assert num_traffic(config) == 20
    assert num_pedestrians(config) == 10
    assert num_traffic(DrivingConfig(traffic_density=0.0)) == 0
