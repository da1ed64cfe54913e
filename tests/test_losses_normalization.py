import jax
import jax.numpy as jnp
import numpy as np

from jaximpala.losses import (
    normalize_advantages,
    popart_init,
    popart_normalize,
    popart_std,
    popart_unnormalize,
    popart_update,
    running_mean_std_denormalize,
    running_mean_std_init,
    running_mean_std_normalize,
    running_mean_std_update,
)


def test_normalize_advantages_uses_valid_entries_only():
    adv = jnp.array([[1.0, 1e6], [3.0, 5.0]])
    mask = jnp.array([[True, False], [True, True]])
    out = normalize_advantages(adv, mask=mask)
    valid = np.asarray(out)[np.asarray(mask)]
    np.testing.assert_allclose(valid.mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(valid.std(), 1.0, rtol=1e-5)
    assert float(out[0, 1]) == 0.0


def test_running_mean_std_equals_whole_stream_statistics_in_float64():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=3.0, scale=[1.0, 10.0, 0.1], size=(n, 4, 3)) for n in (1, 5, 17)]
    masks = [rng.random((b.shape[0], 4)) < 0.7 for b in batches]
    with jax.enable_x64(True):
        state = running_mean_std_init((3,), jnp.float64)
        update = jax.jit(running_mean_std_update)
        for batch, mask in zip(batches, masks, strict=True):
            state = update(state, batch, mask=mask)
    seen = np.concatenate([b[m] for b, m in zip(batches, masks, strict=True)])
    np.testing.assert_allclose(state.mean, seen.mean(0), rtol=1e-12)
    np.testing.assert_allclose(state.var, seen.var(0), rtol=1e-10)
    assert float(state.count) == len(seen)


def test_running_mean_std_is_stable_for_large_offsets_in_float32():
    # A naive E[x^2] - E[x]^2 loses all precision at an offset of 1e4 in float32.
    rng = np.random.default_rng(1)
    state = running_mean_std_init(())
    stream = 1e4 + rng.normal(size=(50, 64))
    for batch in stream:
        state = running_mean_std_update(state, jnp.asarray(batch, jnp.float32))
    np.testing.assert_allclose(state.var, stream.var(), rtol=2e-2)


def test_empty_batch_leaves_state_unchanged_and_normalize_roundtrips():
    state = running_mean_std_update(running_mean_std_init((2,)), jnp.ones((3, 2)) * 5.0)
    same = running_mean_std_update(state, jnp.ones((4, 2)), mask=jnp.zeros((4,), bool))
    for a, b in zip(state, same, strict=True):
        np.testing.assert_array_equal(a, b)
    x = jnp.array([[1.0, -2.0]])
    back = running_mean_std_denormalize(state, running_mean_std_normalize(state, x))
    np.testing.assert_allclose(back, x, rtol=1e-5)
    clipped = running_mean_std_normalize(state, jnp.array([[1e9, -1e9]]), clip=5.0)
    np.testing.assert_array_equal(clipped, [[5.0, -5.0]])


def test_popart_preserves_unnormalised_outputs_precisely():
    rng = np.random.default_rng(2)
    kernel = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
    bias = jnp.asarray(rng.normal(size=(2,)), jnp.float32)
    features = jnp.asarray(rng.normal(size=(16, 8)), jnp.float32)
    state = popart_init(2)
    for i in range(5):
        targets = jnp.asarray(rng.normal(loc=[100.0, -5.0], scale=[30.0, 0.5], size=(4, 6, 2)),
                              jnp.float32)
        before = popart_unnormalize(state, features @ kernel + bias)
        state, kernel, bias = popart_update(state, kernel, bias, targets, step_size=0.3)
        after = popart_unnormalize(state, features @ kernel + bias)
        np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-3, err_msg=f"step {i}")
    assert float(popart_std(state)[0]) > 10 * float(popart_std(state)[1])
    np.testing.assert_allclose(
        popart_unnormalize(state, popart_normalize(state, targets)), targets, rtol=1e-5)


def test_popart_moments_are_exponential_moving_averages():
    targets = jnp.array([[2.0], [4.0]])
    state, _, _ = popart_update(popart_init(1), jnp.ones((3, 1)), jnp.zeros((1,)), targets,
                                step_size=0.5)
    np.testing.assert_allclose(state.mean, [0.5 * 3.0])
    np.testing.assert_allclose(state.second_moment, [0.5 * 1.0 + 0.5 * 10.0])
