import argparse

from jaximpala.bench import sim
from jaximpala.cli import build_parser


def test_measure_ours_counts_env_steps():
    rate = sim.measure_ours(num_envs=4, camera=False, seconds=0.2)
    assert 100 < rate < 1e7


def test_missing_peer_is_reported_not_raised():
    rate, note = sim.measure_peer("import no_such_simulator_xyz", "python3", 0.1)
    assert rate is None and note == "not installed"


def test_peer_rate_is_parsed():
    script = "import json\nprint(json.dumps({'steps_per_s': 123.0, 'steps': SECONDS}))"
    assert sim.measure_peer(script, "python3", 0.5) == (123.0, "ok")


def test_cli_runs_our_part_only(capsys):
    args = build_parser().parse_args(
        ["bench", "sim", "--sizes", "2", "--seconds", "0.1", "--no-peers"])
    assert isinstance(args, argparse.Namespace)
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "camera+lidar+state" in out and "lidar+state (camera off)" in out


def test_profile_names_the_simulator_step():
    out = sim.profile_step(num_envs=2, steps=5, camera=False)
    assert "function calls" in out and "sim.py" in out


def test_random_driving_actions_fit_every_action_layout_and_drive():
    from jaximpala.envs.driving.env import DrivingVectorEnv
    from jaximpala.envs.driving.spaces import action_space

    for pedals in ("separate", "combined"):
        for gearbox in ("manual", "automatic"):
            actions = sim.random_driving_actions(3, seed=0, pedals=pedals, gearbox=gearbox)
            space = action_space(pedals, gearbox)
            for action in actions:
                assert all(space.contains({k: v[i] for k, v in action.items()})
                           for i in range(3)), (pedals, gearbox)
            env = DrivingVectorEnv(num_envs=3, pedals=pedals, gearbox=gearbox)
            env.reset(seed=0)
            speeds = [env.step(action)[4]["speed"] for action in actions]
            assert (speeds[-1] > 0).all(), (pedals, gearbox)  # in drive, throttle on
