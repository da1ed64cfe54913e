"""pmap composition, with two fake CPU devices in a subprocess (XLA_FLAGS must be set
before jax is imported)."""

import textwrap

from tests.multidevice import run_with_two_devices

SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jaximpala import losses
    from tests import reference
    assert jax.local_device_count() == 2, jax.devices()

    data = reference.random_unroll(np.random.default_rng(0), 16, 8)
    data = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in data.items()}
    whole = losses.vtrace(**data)
    # Shard the batch axis over devices: [T, B] -> [D, T, B/D] (bootstrap [B] -> [D, B/D]).
    def shard(x):
        return np.stack(np.split(x, 2, axis=-1))
    sharded = jax.pmap(lambda d: losses.vtrace(**d))({k: shard(v) for k, v in data.items()})
    np.testing.assert_allclose(np.concatenate(list(sharded.vs), axis=-1), whole.vs, rtol=1e-5,
                               atol=1e-5)

    # Pooled running statistics: every device ends with the whole-batch statistics.
    x = np.random.default_rng(1).normal(size=(2, 10, 3)).astype(np.float32)
    mask = np.random.default_rng(2).random((2, 10)) < 0.6
    update = jax.pmap(lambda s, x, m: losses.running_mean_std_update(s, x, mask=m,
                                                                     axis_name="d"),
                      axis_name="d")
    init = losses.running_mean_std_init((3,))
    state = update(jax.tree.map(lambda a: jnp.stack([a, a]), init), x, mask)
    seen = x[mask]
    for d in range(2):
        np.testing.assert_allclose(state.mean[d], seen.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state.var[d], seen.var(0), rtol=1e-4)

    # A shared parameter's gradient, pmean-ed over devices with equal valid counts, equals
    # its gradient on the whole batch on one device.
    features = np.random.default_rng(3).normal(size=(2, 4, 3)).astype(np.float32)
    targets = np.random.default_rng(4).normal(size=(2, 4, 3)).astype(np.float32)
    grad_fn = jax.grad(lambda w, x, t: losses.value_loss(w * x, t, loss_type="huber")[0])
    w = np.float32(0.7)
    pgrad = jax.pmap(lambda x, t: jax.lax.pmean(grad_fn(w, x, t), "d"), axis_name="d")(
        features, targets)
    whole_grad = grad_fn(w, np.concatenate(features, -1), np.concatenate(targets, -1))
    np.testing.assert_allclose(pgrad, [whole_grad, whole_grad], rtol=1e-5)
    print("ok")
""")


def test_losses_under_pmap_with_two_fake_devices():
    assert run_with_two_devices(SCRIPT).strip().endswith("ok")


ADVANTAGE_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    from jaximpala import losses
    adv = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(np.float32)
    mask = np.random.default_rng(1).random((2, 6, 3)) < 0.7
    pooled = jax.pmap(lambda a, m: losses.normalize_advantages(a, mask=m, axis_name="d"),
                      axis_name="d")(adv, mask)
    whole = losses.normalize_advantages(np.concatenate(adv, -1), mask=np.concatenate(mask, -1))
    np.testing.assert_allclose(np.concatenate(list(pooled), -1), whole, rtol=1e-5, atol=1e-6)
    print("ok")
""")


def test_advantage_normalisation_pools_statistics_over_devices():
    assert run_with_two_devices(ADVANTAGE_SCRIPT).strip().endswith("ok")
