import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from jaximpala.bench.losses import _parse_sizes
from jaximpala.cli import main
from jaximpala.losses import gae, vtrace


def test_bench_losses_runs_and_prints_ratios(capsys):
    assert main(["bench", "losses", "--sizes", "8x4,4x2", "--rounds", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.split()[:1] in (["vtrace"], ["gae"],
                                                                   ["gae+ret"])]
    assert len(rows) == 6
    assert all(float(row[5]) > 0 for row in rows)


def test_bad_sizes_are_rejected_with_the_flag_name():
    with pytest.raises(SystemExit, match="--sizes"):
        _parse_sizes("128by256")


def test_agrees_with_rlax_on_unmasked_data():
    # rlax is the peer of the benchmark: on data without episode boundaries inside the
    # unroll, both must compute the same numbers.
    rng = np.random.default_rng(0)
    shape = (20, 3)
    log_rhos = rng.normal(scale=0.5, size=shape).astype(np.float32)
    discounts = np.full(shape, 0.97, np.float32)
    rewards, values = (rng.normal(size=shape).astype(np.float32) for _ in range(2))
    bootstrap = rng.normal(size=(3,)).astype(np.float32)
    ours = vtrace(log_rhos, discounts, rewards, values, bootstrap, clip_rho_threshold=1.3,
                  clip_pg_rho_threshold=1.3, clip_c_threshold=1.0)
    v_t = np.concatenate([values[1:], bootstrap[None]])
    theirs = [rlax.vtrace_td_error_and_advantage(values[:, b], v_t[:, b], rewards[:, b],
                                                 discounts[:, b], np.exp(log_rhos[:, b]),
                                                 clip_rho_threshold=1.3,
                                                 clip_pg_rho_threshold=1.3)
              for b in range(3)]
    # rlax always clips the traces c_t at 1 (our clip_c_threshold=1.0).
    np.testing.assert_allclose(ours.vs, np.stack([t.errors for t in theirs], 1) + values,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.pg_advantages,
                               np.stack([t.pg_advantage for t in theirs], 1), rtol=1e-5,
                               atol=1e-5)
    adv, _ = gae(rewards, discounts, values, bootstrap, lambda_=0.9)
    values_all = jnp.concatenate([values, bootstrap[None]])
    theirs_gae = np.stack([rlax.truncated_generalized_advantage_estimation(
        rewards[:, b], discounts[:, b], 0.9, values_all[:, b]) for b in range(3)], 1)
    np.testing.assert_allclose(adv, theirs_gae, rtol=1e-5, atol=1e-5)
