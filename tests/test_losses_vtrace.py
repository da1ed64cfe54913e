import functools

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaximpala.losses import vtrace
from jaximpala.losses.vtrace import _vtrace
from tests import reference

CLIP_SETTINGS = [
    dict(clip_rho_threshold=1.0, clip_c_threshold=1.0, clip_pg_rho_threshold=1.0, lambda_=1.0),
    dict(clip_rho_threshold=2.0, clip_c_threshold=0.5, clip_pg_rho_threshold=1.5, lambda_=0.9),
    dict(clip_rho_threshold=None, clip_c_threshold=None, clip_pg_rho_threshold=None,
         lambda_=0.7),
]


def _ref_kwargs(setting):
    inf = float("inf")
    return dict(
        rho_bar=setting["clip_rho_threshold"] or inf,
        c_bar=setting["clip_c_threshold"] or inf,
        pg_rho_bar=setting["clip_pg_rho_threshold"] or inf,
        lambda_=setting["lambda_"],
    )


def _reference(data, setting):
    return reference.per_segment(
        reference.vtrace_segment, data["mask"], data["values"], data["bootstrap_value"],
        [data["log_rhos"], data["discounts"], data["rewards"]], **_ref_kwargs(setting))


@pytest.mark.parametrize("setting", CLIP_SETTINGS)
@pytest.mark.parametrize("method", ["scan", "fused_scan", "associative"])
def test_episode_boundaries_match_per_segment_float64_reference(monkeypatch, setting, method):
    method = reference.use_scan_method(monkeypatch, method)
    data = reference.random_unroll(np.random.default_rng(0), 40, 6)
    assert (~data["mask"]).any() and (data["discounts"] == 0).any()
    expected_vs, expected_adv = _reference(data, setting)
    with jax.enable_x64(True):
        out = _vtrace(**data, **setting, method=method)
        assert out.vs.dtype == jnp.float64
    np.testing.assert_allclose(out.vs, expected_vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.pg_advantages, expected_adv, rtol=1e-10, atol=1e-10)


def test_float32_matches_reference_and_masked_steps_are_exact():
    data = reference.random_unroll(np.random.default_rng(1), 32, 8)
    expected_vs, expected_adv = _reference(data, CLIP_SETTINGS[0])
    f32 = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in data.items()}
    out = jax.jit(vtrace)(**f32)
    np.testing.assert_allclose(out.vs, expected_vs, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(out.pg_advantages, expected_adv, rtol=2e-5, atol=2e-5)
    masked = ~data["mask"]
    np.testing.assert_array_equal(np.asarray(out.vs)[masked], f32["values"][masked])
    np.testing.assert_array_equal(np.asarray(out.pg_advantages)[masked], 0.0)


def test_termination_does_not_bootstrap_and_truncation_bootstraps_from_final_value():
    # Hand-worked: one column, gamma = 0.5, on-policy, 4 steps.
    # t=0: terminates (discount 0).  t=1: autoreset (masked).
    # t=2: truncates (discount 0.5); t=3 is its autoreset step, holding V(final obs) = 8.
    rewards = np.array([[1.0], [100.0], [2.0], [100.0]], np.float32)
    discounts = np.array([[0.0], [0.5], [0.5], [0.5]], np.float32)
    values = np.array([[3.0], [5.0], [4.0], [8.0]], np.float32)
    mask = np.array([[True], [False], [True], [False]])
    out = vtrace(np.zeros_like(rewards), discounts, rewards, values,
                 np.array([50.0], np.float32), mask=mask)
    # vs_0 = r_0 = 1 (no bootstrap); vs_2 = r_2 + 0.5 * 8 = 6; masked steps keep V.
    np.testing.assert_allclose(out.vs[:, 0], [1.0, 5.0, 6.0, 8.0])
    np.testing.assert_allclose(out.pg_advantages[:, 0], [1 - 3, 0, 6 - 4, 0])


def test_importance_weights_are_clipped_as_in_the_paper():
    # One step, rho = e^2 clipped to rho_bar = 1.5 for the TD error and 1.2 for the pg term.
    out = vtrace(jnp.full((1, 1), 2.0), jnp.full((1, 1), 0.9), jnp.ones((1, 1)),
                 jnp.zeros((1, 1)), jnp.full((1,), 10.0), clip_rho_threshold=1.5,
                 clip_pg_rho_threshold=1.2)
    np.testing.assert_allclose(out.vs, [[1.5 * (1 + 9)]], rtol=1e-6)
    np.testing.assert_allclose(out.pg_advantages, [[1.2 * (1 + 9)]], rtol=1e-6)


def test_trailing_batch_dims_equal_flattened():
    data = reference.random_unroll(np.random.default_rng(2), 16, 12)
    f32 = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in data.items()}
    flat = vtrace(**f32)
    shaped = vtrace(**{k: v.reshape((*v.shape[:-1], 3, 4)) for k, v in f32.items()})
    np.testing.assert_allclose(shaped.vs.reshape(16, 12), flat.vs, rtol=1e-6)


def test_targets_carry_no_gradient():
    data = reference.random_unroll(np.random.default_rng(3), 8, 3)
    f32 = {k: jnp.asarray(v, jnp.float32) if v.dtype == np.float64 else v
           for k, v in data.items()}

    def total(log_rhos, rewards, values, bootstrap_value):
        out = vtrace(log_rhos, f32["discounts"], rewards, values, bootstrap_value,
                     mask=f32["mask"])
        return jnp.sum(out.vs) + jnp.sum(out.pg_advantages)

    grads = jax.grad(total, argnums=(0, 1, 2, 3))(
        f32["log_rhos"], f32["rewards"], f32["values"], f32["bootstrap_value"])
    for g in grads:
        np.testing.assert_array_equal(g, 0.0)


def test_composes_with_vmap():
    data = reference.random_unroll(np.random.default_rng(4), 10, 4)
    f32 = {k: jnp.asarray(v, jnp.float32) if v.dtype == np.float64 else jnp.asarray(v)
           for k, v in data.items()}
    stacked = {k: jnp.stack([v, v * 0.5 if v.dtype != bool else v]) for k, v in f32.items()}
    batched = jax.vmap(lambda d: vtrace(**d))(stacked)
    for i in range(2):
        single = vtrace(**{k: v[i] for k, v in stacked.items()})
        np.testing.assert_allclose(batched.vs[i], single.vs, rtol=1e-6)


def test_rejects_mismatched_shapes():
    ones = jnp.ones((5, 2))
    with pytest.raises(AssertionError):
        vtrace(ones, ones, ones, jnp.ones((5, 3)), jnp.ones((2,)))
    with pytest.raises(AssertionError):
        vtrace(ones, ones, ones, ones, jnp.ones((3,)))
    with pytest.raises(ValueError, match="clip thresholds must be > 0"):
        vtrace(ones, ones, ones, ones, jnp.ones((2,)), clip_rho_threshold=0.0)


_floats = functools.partial(st.floats, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None)
@given(
    rewards=hnp.arrays(np.float64, (6, 3), elements=_floats(-10, 10)),
    values=hnp.arrays(np.float64, (6, 3), elements=_floats(-10, 10)),
    bootstrap=hnp.arrays(np.float64, (3,), elements=_floats(-10, 10)),
    gamma=_floats(0.0, 1.0),
)
def test_property_unclipped_on_policy_vtrace_is_the_n_step_return(rewards, values, bootstrap,
                                                                   gamma):
    discounts = np.full_like(rewards, gamma)
    with jax.enable_x64(True):
        out = vtrace(np.zeros_like(rewards), discounts, rewards, values, bootstrap,
                     clip_rho_threshold=None, clip_c_threshold=None,
                     clip_pg_rho_threshold=None)
    n_step = reference.discounted_returns(rewards, discounts, bootstrap)
    np.testing.assert_allclose(out.vs, n_step, rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), suffix=st.integers(1, 7), lambda_=_floats(0.0, 1.0))
def test_property_masking_a_suffix_equals_truncating(seed, suffix, lambda_):
    rng = np.random.default_rng(seed)
    num_steps = 8
    data = reference.random_unroll(rng, num_steps, 3, p_end=0.0)
    data["mask"][:] = True
    keep = num_steps - suffix
    suffix_mask = np.broadcast_to(np.arange(num_steps)[:, None] < keep, (num_steps, 3))
    with jax.enable_x64(True):
        masked = vtrace(**{**data, "mask": suffix_mask},
                        lambda_=lambda_)
        cut = vtrace(data["log_rhos"][:keep], data["discounts"][:keep], data["rewards"][:keep],
                     data["values"][:keep], data["values"][keep], lambda_=lambda_)
    np.testing.assert_allclose(masked.vs[:keep], cut.vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(masked.pg_advantages[:keep], cut.pg_advantages, rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_array_equal(masked.vs[keep:], data["values"][keep:])
    np.testing.assert_array_equal(masked.pg_advantages[keep:], 0.0)


@pytest.mark.parametrize("method", ["scan", "associative"])
def test_per_step_lambda_array_equals_scalar(method):
    data = reference.random_unroll(np.random.default_rng(5), 12, 4)
    settings = dict(clip_rho_threshold=1.0, clip_c_threshold=1.0, clip_pg_rho_threshold=1.0)
    with jax.enable_x64(True):
        scalar = _vtrace(**data, **settings, lambda_=0.6, method=method)
        array = _vtrace(**data, **settings, lambda_=np.full((12, 4), 0.6), method=method)
    np.testing.assert_allclose(array.vs, scalar.vs, rtol=1e-12)
    np.testing.assert_allclose(array.pg_advantages, scalar.pg_advantages, rtol=1e-12)
