"""The imitation term during RL: windows, schedule, the learner's loss, pmap, train + resume."""

import json
import textwrap
from typing import Any, NamedTuple

import jax
import numpy as np
import pytest

from jaximpala import imitation
from jaximpala.cli import main
from jaximpala.config import AlgoConfig, ConfigError, load_config
from jaximpala.learner import Learner
from jaximpala.logger import read_metrics
from tests.multidevice import run_with_two_devices
from tests.test_learner import _cartpole_batch
from tests.test_pretrain import _driving_args


class Recording(NamedTuple):
    observations: Any
    actions: Any
    mask: np.ndarray
    episode_starts: np.ndarray


def _recording(steps=9, envs=2):
    """Every entry names its step and env: 10 * t + b."""
    t = np.arange(steps + 1)[:, None] * 10 + np.arange(envs)[None, :]
    mask = np.ones((steps, envs), bool)
    mask[5, 1] = False  # an autoreset transition
    return Recording(observations={"x": t.astype(np.float32)}, actions=t[:-1].copy(),
                     mask=mask, episode_starts=t % 30 == 0)


def test_demo_windows_cut_the_recording_side_by_side_hand_worked():
    windows = imitation.demo_windows(_recording(), length=4, burn_in=1)
    # Windows start at steps 0 and 4 (4 + 4 <= 9; 8 + 4 is past the end): W = 2 x 2.
    np.testing.assert_array_equal(windows.observations["x"][:, 0], [0, 10, 20, 30, 40])
    np.testing.assert_array_equal(windows.observations["x"][:, 1], [1, 11, 21, 31, 41])
    np.testing.assert_array_equal(windows.observations["x"][:, 2], [40, 50, 60, 70, 80])
    np.testing.assert_array_equal(windows.actions[:, 3], [41, 51, 61, 71])
    np.testing.assert_array_equal(windows.episode_starts[:, 2], [False, False, True, False,
                                                                 False])
    expected_mask = np.ones((4, 4), bool)
    expected_mask[0] = False  # the burn-in
    expected_mask[1, 3] = False  # step 5 of env 1: the autoreset transition
    np.testing.assert_array_equal(windows.mask, expected_mask)
    for burn_in, length in ((4, 4), (0, 10)):
        with pytest.raises(ValueError, match="do not fit"):
            imitation.demo_windows(_recording(), length=length, burn_in=burn_in)


def test_shard_windows_splits_the_columns_and_drops_the_remainder():
    windows = imitation.demo_windows(_recording(envs=3), length=4, burn_in=0)  # W = 6
    sharded = imitation.shard_windows(windows, 4)
    assert sharded.mask.shape == (4, 4, 1) and sharded.observations["x"].shape == (4, 5, 1)
    np.testing.assert_array_equal(sharded.observations["x"][3, :, 0],
                                  windows.observations["x"][:, 3])
    with pytest.raises(ValueError, match="do not split over 8 devices"):
        imitation.shard_windows(windows, 8)


def test_the_weight_goes_linearly_from_coef_to_coef_end():
    term = imitation.Imitation(windows=None, coef=1.0, coef_end=0.2, columns=2)
    weights = [float(imitation.coef_at(term, step, 4)) for step in (0, 1, 4, 9)]
    np.testing.assert_allclose(weights, [1.0, 0.8, 0.2, 0.2], rtol=1e-6)


def _cartpole_term(batch, coef, label):
    """CartPole windows of the batch's observations, every label `label`."""
    demos = Recording(observations=batch.observations,
                      actions=np.full_like(batch.actions, label), mask=np.asarray(batch.mask),
                      episode_starts=batch.episode_starts)
    windows = imitation.demo_windows(demos, length=4, burn_in=0)  # W = 2 x 4
    return imitation.Imitation(windows=windows, coef=coef, coef_end=coef, columns=4)


@pytest.mark.parametrize("name", ["impala", "appo"])
def test_the_term_pulls_the_policy_to_the_labels_and_weight_zero_changes_nothing(name):
    agent, batch = _cartpole_batch()
    algo = AlgoConfig(name=name, unroll_length=8, batch_size=4, num_minibatches=2,
                      ppo_epochs=2, learning_rate=1e-2)
    plain = Learner(agent, algo, num_updates=10, key=jax.random.key(0))
    zero = Learner(agent, algo, num_updates=10, key=jax.random.key(0),
                   imitation=_cartpole_term(batch, 0.0, 1))
    strong = Learner(agent, algo, num_updates=10, key=jax.random.key(0),
                     imitation=_cartpole_term(batch, 5.0, 1))
    nll = []
    for _ in range(10):
        plain.update(batch)
        zero_metrics = zero.update(batch)
        nll.append(strong.update(batch)["imitation_nll"])
    assert "imitation_nll" not in plain.update(batch)
    assert zero_metrics["imitation_coef"] == 0.0
    # A zero weight adds exact zeros to the gradient and draws from its own key stream.
    zero.update(batch)
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(zero.params), strict=True):
        np.testing.assert_array_equal(a, b)
    # Two actions: the NLL starts near log 2 and falls as the policy takes the label.
    assert abs(nll[0] - np.log(2)) < 0.1 and nll[-1] < 0.6 * nll[0]
    for learner, low, high in ((plain, 0.0, 0.9), (strong, 0.7, 1.0)):
        dist = agent.evaluate(learner.params, batch.observations, batch.actions,
                              batch.core_state, batch.episode_starts).dist
        p_label = float(np.exp(dist.log_prob(np.ones_like(batch.actions))).mean())
        assert low <= p_label <= high, (learner is strong, p_label)


PMAP_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    from jaximpala.config import AlgoConfig
    from jaximpala.learner import Learner
    from tests.test_learner import _cartpole_batch
    from tests.test_imitation import _cartpole_term
    assert jax.local_device_count() == 2
    agent, batch = _cartpole_batch(num_envs=4)
    for name in ("impala", "appo"):
        algo = AlgoConfig(name=name, unroll_length=8, batch_size=4, num_minibatches=1)
        learner = Learner(agent, algo, num_updates=10, key=jax.random.key(0),
                          imitation=_cartpole_term(batch, 1.0, 1))
        assert learner._demos.mask.shape == (2, 4, 4), learner._demos.mask.shape
        metrics = learner.update(batch)
        assert np.isfinite(metrics["imitation_nll"]) and metrics["imitation_coef"] == 1.0
        replicas = [jax.tree.map(lambda x, d=d: np.asarray(x[d]), learner.state.params)
                    for d in range(2)]
        for a, b in zip(*map(jax.tree.leaves, replicas), strict=True):
            np.testing.assert_array_equal(a, b)  # the term's gradients are averaged too
    print("ok")
""")


def test_the_term_runs_data_parallel_over_two_devices():
    assert run_with_two_devices(PMAP_SCRIPT).strip().endswith("ok")


def test_train_keeps_the_term_and_its_demonstrations_across_resume(tmp_path, capsys):
    args = _driving_args(tmp_path, "pretrain.demo_env_steps=512", "pretrain.num_envs=4",
                         "pretrain.epochs=1", "pretrain.bc_coef=2.0",
                         "pretrain.bc_coef_end=0.0", "pretrain.bc_columns=4",
                         "logging.log_every=1")
    with pytest.warns(UserWarning, match="value head is not fitted"):
        assert main(args) == 0, capsys.readouterr().err
    run = tmp_path / "run"
    windows = imitation.load_windows(run / "demonstrations.msgpack")
    # 128 steps per env in windows of 32: 4 x 4 columns, 8 burn-in labels out of each.
    assert windows.mask.shape == (32, 16) and not windows.mask[:8].any()
    assert windows.mask[8:].all()
    records = read_metrics(run)[1:]
    # total_env_steps=2048 is 16 updates of 4 x 32; the weight falls by 2 / 16 per update.
    np.testing.assert_allclose([r["imitation_coef"] for r in records],
                               [2.0 - 2.0 * u / 16 for u in range(16)], rtol=1e-5)
    assert all(np.isfinite(r["imitation_nll"]) for r in records)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "total_env_steps=2560"]) == 0
    resumed = read_metrics(run)[-4:]
    assert [r["update"] for r in resumed] == [17, 18, 19, 20]
    np.testing.assert_allclose([r["imitation_coef"] for r in resumed],
                               [2.0 - 2.0 * u / 20 for u in range(16, 20)], rtol=1e-5)
    (run / "demonstrations.msgpack").unlink()
    assert main(["train", "--resume", str(run), "total_env_steps=3072"]) == 2
    assert "demonstrations.msgpack is missing" in capsys.readouterr().err
    assert json.loads((run / "summary.json").read_text())["updates"] == 20
    assert load_config(run / "config.yaml").total_env_steps == 2560  # left as it was


def test_imitation_config_is_checked():
    with pytest.raises(ConfigError, match=r"set pretrain\.demo_env_steps > 0"):
        load_config(None, ["pretrain.bc_coef=0.5"])
    with pytest.raises(ConfigError, match="bc_burn_in: 32 must be shorter"):
        load_config(None, ["pretrain.demo_env_steps=100000", "pretrain.bc_coef=0.5",
                           "pretrain.bc_burn_in=32", "algo.unroll_length=32"])
    with pytest.raises(ConfigError, match="bc_coef_end"):
        load_config(None, ["pretrain.bc_coef_end=-1"])
