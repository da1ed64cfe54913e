import jax.numpy as jnp
import numpy as np

from jaximpala.losses import masked_max, masked_mean, masked_min, masked_sum, masked_var


def test_nan_in_invalid_slot_does_not_leak():
    x = jnp.array([[1.0, jnp.nan], [3.0, jnp.inf]])
    mask = jnp.array([[True, False], [True, False]])
    assert float(masked_mean(x, mask)) == 2.0
    assert float(masked_sum(x, mask)) == 4.0
    assert float(masked_var(x, mask)) == 1.0
    assert float(masked_max(x, mask)) == 3.0
    assert float(masked_min(x, mask)) == 1.0


def test_empty_mask_gives_zero_mean_and_unmasked_matches_numpy():
    x = jnp.arange(6.0).reshape(2, 3)
    assert float(masked_mean(x, jnp.zeros((2, 3), bool))) == 0.0
    np.testing.assert_allclose(masked_mean(x, None), np.mean(np.arange(6.0)))
    np.testing.assert_allclose(masked_var(x, None), np.var(np.arange(6.0)))
    np.testing.assert_allclose(masked_mean(x, jnp.array([[1, 0, 1], [0, 0, 1]])), 7 / 3)
