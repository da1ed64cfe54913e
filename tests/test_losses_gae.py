import functools

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaximpala.losses import gae
from jaximpala.losses.gae import _gae
from tests import reference


def _reference(data, lambda_):
    return reference.per_segment(
        reference.gae_segment, data["mask"], data["values"], data["bootstrap_value"],
        [data["rewards"], data["discounts"]], lambda_=lambda_)


def _gae_inputs(data):
    return {k: data[k] for k in ("rewards", "discounts", "values", "bootstrap_value", "mask")}


@pytest.mark.parametrize("lambda_", [0.0, 0.95, 1.0])
@pytest.mark.parametrize("method", ["scan", "fused_scan", "associative"])
def test_episode_boundaries_match_per_segment_float64_reference(monkeypatch, lambda_, method):
    method = reference.use_scan_method(monkeypatch, method)
    data = reference.random_unroll(np.random.default_rng(10), 40, 6)
    expected_adv, expected_ret = _reference(data, lambda_)
    # The reference returns (advantages, returns) but per_segment fills masked steps of its
    # first output with values: masked advantages are 0 by contract.
    expected_adv = np.where(data["mask"], expected_adv, 0.0)
    expected_ret = np.where(data["mask"], expected_ret, data["values"])
    with jax.enable_x64(True):
        out = _gae(**_gae_inputs(data), lambda_=lambda_, method=method)
    np.testing.assert_allclose(out.advantages, expected_adv, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.returns, expected_ret, rtol=1e-10, atol=1e-10)


def test_hand_worked_truncation_and_termination():
    # gamma = 0.5, lambda = 1. t=0 truncates (final-obs value 8 sits at masked t=1);
    # t=2 terminates; t=3 is its autoreset step.
    rewards = jnp.array([[2.0], [100.0], [1.0], [100.0]])
    discounts = jnp.array([[0.5], [0.5], [0.0], [0.5]])
    values = jnp.array([[4.0], [8.0], [3.0], [6.0]])
    mask = jnp.array([[True], [False], [True], [False]])
    adv, ret = gae(rewards, discounts, values, jnp.array([50.0]), lambda_=1.0, mask=mask)
    np.testing.assert_allclose(adv[:, 0], [2 + 0.5 * 8 - 4, 0, 1 - 3, 0])
    np.testing.assert_allclose(ret[:, 0], [6, 8, 1, 6])


def test_outputs_carry_no_gradient_and_jit_matches():
    data = reference.random_unroll(np.random.default_rng(11), 12, 3)
    inputs = {k: jnp.asarray(v, jnp.float32) if v.dtype == np.float64 else jnp.asarray(v)
              for k, v in _gae_inputs(data).items()}

    def total(values, rewards):
        adv, ret = gae(rewards, inputs["discounts"], values, inputs["bootstrap_value"],
                       mask=inputs["mask"])
        return jnp.sum(adv) + jnp.sum(ret)

    for g in jax.grad(total, argnums=(0, 1))(inputs["values"], inputs["rewards"]):
        np.testing.assert_array_equal(g, 0.0)
    eager = gae(**inputs)
    jitted = jax.jit(gae)(**inputs)
    np.testing.assert_allclose(eager.advantages, jitted.advantages, rtol=1e-5, atol=1e-6)


_floats = functools.partial(st.floats, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None)
@given(
    rewards=hnp.arrays(np.float64, (7, 2), elements=_floats(-10, 10)),
    values=hnp.arrays(np.float64, (7, 2), elements=_floats(-10, 10)),
    bootstrap=hnp.arrays(np.float64, (2,), elements=_floats(-10, 10)),
    discounts=hnp.arrays(np.float64, (7, 2), elements=_floats(0.0, 1.0)),
)
def test_property_gae_lambda_one_is_discounted_return_minus_values(rewards, values, bootstrap,
                                                                    discounts):
    with jax.enable_x64(True):
        adv, ret = gae(rewards, discounts, values, bootstrap, lambda_=1.0)
    returns = reference.discounted_returns(rewards, discounts, bootstrap)
    np.testing.assert_allclose(adv, returns - values, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ret, returns, rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), suffix=st.integers(1, 7), lambda_=_floats(0.0, 1.0))
def test_property_masking_a_suffix_equals_truncating(seed, suffix, lambda_):
    data = reference.random_unroll(np.random.default_rng(seed), 8, 3, p_end=0.0)
    keep = 8 - suffix
    suffix_mask = np.broadcast_to(np.arange(8)[:, None] < keep, (8, 3))
    with jax.enable_x64(True):
        masked = gae(data["rewards"], data["discounts"], data["values"],
                     data["bootstrap_value"], lambda_=lambda_, mask=suffix_mask)
        cut = gae(data["rewards"][:keep], data["discounts"][:keep], data["values"][:keep],
                  data["values"][keep], lambda_=lambda_)
    np.testing.assert_allclose(masked.advantages[:keep], cut.advantages, rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_array_equal(masked.advantages[keep:], 0.0)
    np.testing.assert_array_equal(masked.returns[keep:], data["values"][keep:])


@pytest.mark.parametrize("method", ["scan", "associative"])
def test_per_step_lambda_array_equals_scalar_and_is_used_per_step(method):
    data = reference.random_unroll(np.random.default_rng(12), 10, 3)
    inputs = _gae_inputs(data)
    with jax.enable_x64(True):
        scalar = _gae(**inputs, lambda_=0.8, method=method)
        array = _gae(**inputs, lambda_=np.full((10, 3), 0.8), method=method)
        # lambda_t = 0 at t=4 cuts the trace there and only there.
        cut = np.full((10, 3), 0.8)
        cut[4] = 0.0
        varying = _gae(**inputs, lambda_=cut, method=method)
    np.testing.assert_allclose(array.advantages, scalar.advantages, rtol=1e-12)
    np.testing.assert_allclose(varying.advantages[5:], scalar.advantages[5:], rtol=1e-12)
    assert not np.allclose(varying.advantages[4], scalar.advantages[4])
