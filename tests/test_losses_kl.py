import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaximpala.losses import adaptive_kl_init, adaptive_kl_update, kl_penalty_loss, sample_kl


def test_sample_kl_is_unbiased_for_categoricals():
    mu = np.array([0.5, 0.3, 0.2])
    pi = np.array([0.2, 0.5, 0.3])
    actions = jax.random.choice(jax.random.key(7), 3, shape=(200_000,), p=jnp.asarray(mu))
    log_ratio = jnp.log(pi)[actions] - jnp.log(mu)[actions]
    estimate = float(jnp.mean(sample_kl(log_ratio)))
    exact = float(np.sum(mu * np.log(mu / pi)))
    assert abs(estimate - exact) < 0.01 * exact + 2e-3
    assert np.all(np.asarray(sample_kl(log_ratio)) >= 0)


def test_kl_penalty_loss_masks_and_scales():
    kl = jnp.array([[0.1, 100.0], [0.3, 0.2]])
    mask = jnp.array([[True, False], [True, True]])
    loss, metrics = kl_penalty_loss(kl, coef=2.0, mask=mask)
    np.testing.assert_allclose(loss, 2.0 * 0.2, rtol=1e-6)
    np.testing.assert_allclose(metrics["kl"], 0.2, rtol=1e-6)


def test_adaptive_kl_controller_follows_the_ppo_rule():
    state = adaptive_kl_init(1.0)
    update = jax.jit(lambda s, kl: adaptive_kl_update(s, kl, target=0.01))
    assert float(update(state, jnp.float32(0.02)).coef) == 2.0
    assert float(update(state, jnp.float32(0.005)).coef) == 0.5
    assert float(update(state, jnp.float32(0.012)).coef) == 1.0
    low = adaptive_kl_update(adaptive_kl_init(1e-6), jnp.float32(0.0), target=0.01)
    assert float(low.coef) == pytest.approx(1e-6)
    with pytest.raises(ValueError, match="initial_coef"):
        adaptive_kl_init(0.0)
