import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaximpala.losses import explained_variance, value_loss


def test_squared_and_huber_hand_worked():
    values = jnp.array([[0.0, 0.0, 0.0]])
    targets = jnp.array([[0.5, 2.0, -3.0]])
    loss, _ = value_loss(values, targets)
    np.testing.assert_allclose(loss, np.mean([0.125, 2.0, 4.5]), rtol=1e-6)
    huber, _ = value_loss(values, targets, loss_type="huber", huber_delta=1.0)
    np.testing.assert_allclose(huber, np.mean([0.125, 1.5, 2.5]), rtol=1e-6)
    with pytest.raises(ValueError, match="loss_type"):
        value_loss(values, targets, loss_type="l1")


def test_value_clipping_takes_the_pessimistic_error():
    old = jnp.array([[1.0, 1.0]])
    values = jnp.array([[2.0, 1.1]])
    targets = jnp.array([[3.0, 0.0]])
    loss, metrics = value_loss(values, targets, old_values=old, clip_epsilon=0.2)
    # Step 0: unclipped error 1, clipped value 1.2 has error 1.8 -> 0.5 * 1.8^2.
    # Step 1: within range, error 1.1.
    np.testing.assert_allclose(loss, np.mean([0.5 * 1.8**2, 0.5 * 1.1**2]), rtol=1e-6)
    np.testing.assert_allclose(metrics["value_clip_fraction"], 0.5)
    grad = jax.grad(lambda v: value_loss(v, targets, old_values=old, clip_epsilon=0.2)[0])(
        values)
    np.testing.assert_allclose(grad, [[0.0, 1.1 / 2]], rtol=1e-6)
    with pytest.raises(ValueError, match="both old_values and clip_epsilon"):
        value_loss(values, targets, clip_epsilon=0.2)


def test_gradient_is_masked_and_targets_stopped():
    values = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    targets = jnp.zeros((2, 2))
    mask = jnp.array([[True, False], [True, True]])
    g_values, g_targets = jax.grad(
        lambda v, t: value_loss(v, t, mask=mask)[0], argnums=(0, 1))(values, targets)
    np.testing.assert_allclose(g_values, [[1 / 3, 0.0], [1.0, 4 / 3]], rtol=1e-6)
    np.testing.assert_array_equal(g_targets, 0.0)


def test_explained_variance_cases():
    targets = jnp.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(explained_variance(targets, targets), 1.0)
    np.testing.assert_allclose(explained_variance(jnp.full((1, 4), 2.5), targets), 0.0,
                               atol=1e-7)
    np.testing.assert_allclose(explained_variance(jnp.zeros((1, 4)), jnp.ones((1, 4))), 0.0)
    rng = np.random.default_rng(0)
    t, v = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    expected = 1 - np.var(t - v) / np.var(t)
    with jax.enable_x64(True):
        np.testing.assert_allclose(explained_variance(v, t), expected, rtol=1e-10)
