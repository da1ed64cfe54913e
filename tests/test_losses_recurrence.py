import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaximpala.losses.recurrence import resolve_method, reverse_linear_recurrence


@pytest.mark.parametrize("num_steps", [1, 2, 7, 64, 129])
@pytest.mark.parametrize("method", ["scan", "associative"])
def test_matches_python_loop(num_steps, method):
    rng = np.random.default_rng(num_steps)
    a = rng.normal(size=(num_steps, 5))
    b = rng.uniform(0, 1, size=(num_steps, 5))
    init = rng.normal(size=(5,))
    expected = np.empty_like(a)
    acc = init
    for t in reversed(range(num_steps)):
        acc = a[t] + b[t] * acc
        expected[t] = acc
    with jax.enable_x64(True):
        out = reverse_linear_recurrence(a, b, init, method=method)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_auto_picks_scan_on_cpu_and_rejects_unknown():
    assert jax.default_backend() == "cpu"
    assert resolve_method("auto") == "scan"
    with pytest.raises(ValueError, match="method must be"):
        resolve_method("parallel")


def test_gradients_of_both_methods_agree():
    rng = np.random.default_rng(0)
    a, b = jnp.asarray(rng.normal(size=(9, 2))), jnp.asarray(rng.uniform(size=(9, 2)))
    init = jnp.asarray(rng.normal(size=(2,)))

    def loss(a, b, method):
        return jnp.sum(reverse_linear_recurrence(a, b, init, method=method) ** 2)

    g_scan = jax.grad(loss, argnums=(0, 1))(a, b, "scan")
    g_assoc = jax.grad(loss, argnums=(0, 1))(a, b, "associative")
    for x, y in zip(g_scan, g_assoc, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
