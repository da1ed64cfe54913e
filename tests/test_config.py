import pytest

from jaximpala.config import AlgoConfig, EnvConfig, RuntimeConfig, frames_per_update, num_updates


def test_defaults_are_valid_and_derived_sizes_are_computed():
    algo = AlgoConfig(unroll_length=8, batch_size=4)
    assert frames_per_update(algo) == 32
    assert num_updates(algo, 100) == 3
    assert num_updates(algo, 1) == 1
    assert EnvConfig().id == "jaximpala/Driving-v0"
    assert RuntimeConfig().mode == "inline"


@pytest.mark.parametrize("make, field", [
    (lambda: AlgoConfig(name="dqn"), "AlgoConfig.name"),
    (lambda: AlgoConfig(gamma=1.5), "AlgoConfig.gamma"),
    (lambda: AlgoConfig(name="ppo", batch_size=6, num_minibatches=4),
     "AlgoConfig.num_minibatches"),
    (lambda: AlgoConfig(unroll_length=True), "AlgoConfig.unroll_length"),
    (lambda: EnvConfig(num_envs=0), "EnvConfig.num_envs"),
    (lambda: EnvConfig(id=""), "EnvConfig.id"),
    (lambda: RuntimeConfig(mode="ray"), "RuntimeConfig.mode"),
    (lambda: RuntimeConfig(trajectory_port=70000), "RuntimeConfig.trajectory_port"),
    (lambda: RuntimeConfig(num_actors=0), "RuntimeConfig.num_actors"),
    (lambda: RuntimeConfig(max_policy_lag=-1), "RuntimeConfig.max_policy_lag"),
])
def test_invalid_values_name_the_field(make, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        make()
