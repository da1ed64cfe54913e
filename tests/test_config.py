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
    (lambda: RuntimeConfig(io_threads=0), "RuntimeConfig.io_threads"),
    (lambda: RuntimeConfig(max_policy_lag=-1), "RuntimeConfig.max_policy_lag"),
])
def test_invalid_values_name_the_field(make, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        make()


# --- RunConfig and the YAML loader -------------------------------------------------------

import dataclasses  # noqa: E402
import pathlib  # noqa: E402
import typing  # noqa: E402

from jaximpala import config as config_module  # noqa: E402
from jaximpala.config import ConfigError, RunConfig, dump_config, load_config  # noqa: E402
from jaximpala.inline import agent_for_env  # noqa: E402
from jaximpala.networks import NetworkConfig  # noqa: E402
from jaximpala.train import check_driving_kwargs  # noqa: E402

CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_overrides_are_typed_from_the_dataclass_fields():
    config = load_config(None, [
        "algo.name=ppo", "algo.learning_rate=3e-4", "total_env_steps=1e5", "seed=7",
        "network.torso_sizes=[32, 16]", "algo.max_grad_norm=null", "env.kwargs.preset=easy",
        "logging.tags=[a, b]", "network.use_lstm=true", "algo.gamma=1"])
    assert config.algo.name == "ppo" and config.algo.learning_rate == 3e-4
    assert config.total_env_steps == 100_000 and isinstance(config.total_env_steps, int)
    assert config.seed == 7
    assert config.network.torso_sizes == (32, 16)
    assert config.algo.max_grad_norm is None
    assert config.env.kwargs == {"preset": "easy"}
    assert config.logging.tags == ("a", "b")
    assert config.network.use_lstm is True
    assert config.algo.gamma == 1.0 and isinstance(config.algo.gamma, float)


@pytest.mark.parametrize("override, message", [
    ("algo.nme=ppo", r"algo\.nme: unknown key \(did you mean algo\.name\?\); allowed keys "
                     r"of algo: \['name', 'unroll_length'"),
    ("colour=red", r"colour: unknown key; allowed keys: \['seed', 'total_env_steps'"),
    ("algo.name=dqn", r"algo\.name: must be one of \['impala', 'ppo', 'appo'\], got 'dqn'"),
    ("algo.batch_size=0", r"algo\.batch_size: must be a positive int, got 0"),
    ("algo.unroll_length=2.5", r"algo\.unroll_length: must be an int, got 2\.5"),
    ("algo.gamma=high", r"algo\.gamma: must be a number, got 'high'"),
    ("algo.gamma=2", r"algo\.gamma: must be in \[0\.0, 1\.0\], got 2\.0"),
    ("network.use_lstm=1", r"network\.use_lstm: must be true or false, got 1"),
    ("network.torso_sizes=64", r"network\.torso_sizes: must be a list, got 64"),
    ("network.torso_sizes=[64, x]", r"network\.torso_sizes\[1\]: must be an int, got 'x'"),
    ("logging.wandb_mode=cloud", r"logging\.wandb_mode: must be one of \['offline', "
                                 r"'online', 'disabled'\]"),
    ("runtime.mode=ray", r"runtime\.mode: must be one of \['inline', 'distributed'\]"),
    ("env.num_envs=3", r"env\.num_envs: must divide algo\.batch_size=32"),
    ("seed.value=1", r"seed: must be an int"),
    ("env=CartPole-v1", r"env: must be a mapping of \["),
    ("noequals", r"override 'noequals' must look like key\.path=value"),
])
def test_bad_keys_types_and_values_name_the_dotted_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_a_yaml_file_with_a_wrong_key_names_it(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("algo:\n  name: ppo\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"algo\.lr: unknown key"):
        load_config(path)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_round_trip_through_the_dumped_yaml(path, tmp_path):
    config = load_config(path)
    check_driving_kwargs(config)  # a driving config's env.kwargs resolve as the env's would
    dumped = tmp_path / "resolved.yaml"
    dumped.write_text(dump_config(config))
    assert load_config(dumped) == config


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_network_fits_their_env(path):
    """The network's initial_action must match the action space the env kwargs give (one
    discrete entry with an automatic gearbox, one pedal with combined pedals)."""
    config = load_config(path)
    agent_for_env(config.env.id, config.env.kwargs, config.network)


def test_the_stable_config_keys_of_the_design_exist():
    stable = ["seed", "total_env_steps", "run_dir", "env.id", "env.num_envs", "algo.name",
              "algo.unroll_length", "algo.batch_size", "runtime.mode", "runtime.num_actors",
              "logging.wandb_mode"]
    config = RunConfig()
    for key in stable:
        value = config
        for part in key.split("."):
            value = getattr(value, part)


def _sections(cls):
    yield cls
    for field in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[field.name]
        if dataclasses.is_dataclass(hint):
            yield from _sections(hint)


@pytest.mark.parametrize("cls", list(_sections(RunConfig)), ids=lambda c: c.__name__)
def test_every_config_field_is_documented(cls):
    doc = cls.__doc__
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in doc]
    assert not missing, f"{cls.__name__} docstring does not document {missing}"
    assert cls in (NetworkConfig,) or cls.__module__ == config_module.__name__
