"""The pipeline benchmark measures the run a config describes (its env kwargs and network)."""

import argparse

import numpy as np

from jaximpala.bench.pipeline import (
    _env_and_network,
    _example_arrays,
    measure_acting,
    measure_raw_simulator,
    measure_zmq,
)
from jaximpala.transport.codec import MessageSpec


def _args(**overrides):
    args = dict(env="jaximpala/Driving-v0", config=None, num_envs=2, unroll_length=4)
    return argparse.Namespace(**{**args, **overrides})


def test_without_a_config_the_env_defaults_and_default_network_are_measured():
    env, network = _env_and_network(_args())
    assert (env.id, env.num_envs, env.kwargs, network) == ("jaximpala/Driving-v0", 2, {}, None)


def test_a_config_brings_its_env_kwargs_and_network_but_not_its_num_envs():
    env, network = _env_and_network(_args(config="configs/driving_appo.yaml"))
    assert env.id == "jaximpala/Driving-easy-v0" and env.num_envs == 2
    assert env.kwargs["camera"] is False
    assert tuple(network.torso_sizes) == (128,)


def test_messages_have_the_configs_observation_keys():
    names = _example_arrays(_args(config="configs/driving_appo.yaml"))
    assert not any("camera" in name for name in names)
    assert any("lidar" in name for name in names)
    default = _example_arrays(_args())
    assert any("camera" in name for name in default)


def test_the_driving_random_policy_resets_like_an_actor_and_uniform_samples_barely_do():
    # Why the actor-overhead ratio is judged against the driving policy on this env: the
    # raw side's cost depends on its reset rate.
    args = _args(config="configs/driving_appo.yaml", num_envs=16, actors=1, seconds=1.5)
    uniform_rate, uniform_episodes = measure_raw_simulator(args, "uniform")
    driving_rate, driving_episodes = measure_raw_simulator(args, "driving")
    assert uniform_rate > 0 and driving_rate > 0
    assert driving_episodes > 5.0  # an episode per < 200 frames, as an untrained actor's
    assert uniform_episodes < driving_episodes / 10


def test_acting_without_sockets_collects_with_the_configs_network():
    # The peer that splits the actor-overhead ratio: a spawned single-threaded process that
    # builds the config's env and network and collects whole unrolls (one that fails puts
    # no rate on the queue, and the measurement raises).
    args = _args(config="configs/driving_appo.yaml", num_envs=4, actors=1, seconds=1.0)
    rate = measure_acting(args)
    assert rate.frames_per_s > 0 and rate.episodes_per_1k_frames >= 0
    assert rate.env_us > 0 and rate.network_us > 0 and rate.other_us > 0


def test_transport_from_several_actors_counts_every_validated_message(tmp_path):
    arrays = {".rewards": np.ones((5, 3), np.float32), ".obs": np.zeros((6, 3, 8), np.uint8)}
    spec = MessageSpec.from_example(arrays, meta_fields=(
        "actor_id", "incarnation", "sequence", "policy_version"), finite=(".rewards",))
    path = str(tmp_path / "t.npz")
    np.savez(path, **arrays)
    # Two senders released together, 10 messages each (21 // 2): the receiver counts 20.
    assert measure_zmq(path, spec, 21, senders=2) > 0
