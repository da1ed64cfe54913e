"""Distributions against float64 numpy references, hand-worked cases and Monte Carlo."""

import itertools
import math

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaximpala.distributions import (
    SQUASHED_MEAN_BOUND,
    Categorical,
    CategoricalSpec,
    DiagGaussian,
    GaussianSpec,
    Joint,
    JointSpec,
    MultiCategorical,
    MultiCategoricalSpec,
    TanhDiagGaussian,
    make_action_distribution,
)

RNG = np.random.default_rng(0)


def np_log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_gaussian_log_prob(x, mean, log_std):
    x, mean, log_std = (np.asarray(a, np.float64) for a in (x, mean, log_std))
    z = (x - mean) / np.exp(log_std)
    return np.sum(-0.5 * z**2 - log_std - 0.5 * np.log(2 * np.pi), axis=-1)


# ---------------------------------------------------------------------------- categorical


def test_categorical_hand_worked():
    # p = (1/2, 1/4, 1/4): H = 1.5 log 2; log p(1) = -2 log 2.
    dist = Categorical(jnp.log(jnp.array([0.5, 0.25, 0.25])))
    np.testing.assert_allclose(dist.entropy(), 1.5 * math.log(2), rtol=1e-6)
    np.testing.assert_allclose(dist.log_prob(jnp.array(1)), -2 * math.log(2), rtol=1e-6)
    assert int(dist.mode()) == 0


def test_categorical_matches_numpy_reference():
    logits_p, logits_q = RNG.normal(size=(2, 4, 3, 6)) * 2
    actions = RNG.integers(0, 6, size=(4, 3))
    p, q = Categorical(jnp.asarray(logits_p, jnp.float32)), Categorical(jnp.asarray(logits_q,
                                                                                    jnp.float32))
    log_p, log_q = np_log_softmax(logits_p), np_log_softmax(logits_q)
    np.testing.assert_allclose(
        p.log_prob(actions), np.take_along_axis(log_p, actions[..., None], -1)[..., 0],
        rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p.entropy(), -np.sum(np.exp(log_p) * log_p, -1), rtol=1e-5)
    np.testing.assert_allclose(p.kl(q), np.sum(np.exp(log_p) * (log_p - log_q), -1),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(p.kl(p), 0.0, atol=1e-6)


def test_categorical_sampling_frequencies_match_probabilities():
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    dist = Categorical(jnp.broadcast_to(jnp.log(jnp.asarray(probs, jnp.float32)), (40_000, 4)))
    samples = np.asarray(dist.sample(jax.random.key(3)))
    assert samples.dtype == np.int32
    freq = np.bincount(samples, minlength=4) / samples.size
    # Binomial std of a frequency is <= 0.0025 here; 4 sigma.
    np.testing.assert_allclose(freq, probs, atol=0.01)


def test_multi_categorical_unequal_sizes_is_sum_of_components():
    nvec = (4, 2, 3)
    spec = MultiCategoricalSpec(nvec)
    flat = jnp.asarray(RNG.normal(size=(5, spec.num_params)), jnp.float32)
    other = jnp.asarray(RNG.normal(size=(5, spec.num_params)), jnp.float32)
    dist, other_dist = spec.from_flat(flat), spec.from_flat(other)
    actions = np.stack([RNG.integers(0, n, size=5) for n in nvec], axis=-1)

    splits = np.cumsum(nvec)[:-1]
    chunks = np.split(np.asarray(flat, np.float64), splits, axis=-1)
    other_chunks = np.split(np.asarray(other, np.float64), splits, axis=-1)
    want_log_prob = want_entropy = want_kl = 0.0
    for i, (chunk, other_chunk) in enumerate(zip(chunks, other_chunks, strict=True)):
        log_p, log_q = np_log_softmax(chunk), np_log_softmax(other_chunk)
        want_log_prob += np.take_along_axis(log_p, actions[:, i:i + 1], -1)[:, 0]
        want_entropy += -np.sum(np.exp(log_p) * log_p, -1)
        want_kl += np.sum(np.exp(log_p) * (log_p - log_q), -1)
    np.testing.assert_allclose(dist.log_prob(actions), want_log_prob, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dist.entropy(), want_entropy, rtol=1e-5)
    np.testing.assert_allclose(dist.kl(other_dist), want_kl, rtol=1e-4, atol=1e-6)


def test_multi_categorical_never_samples_padding_and_has_finite_gradients():
    spec = MultiCategoricalSpec((2, 5))
    flat = jnp.zeros((20_000, spec.num_params))
    samples = np.asarray(spec.from_flat(flat).sample(jax.random.key(0)))
    assert samples[:, 0].max() == 1 and samples[:, 1].max() == 4
    np.testing.assert_allclose(np.bincount(samples[:, 0]) / 20_000, [0.5, 0.5], atol=0.015)
    grad = jax.grad(lambda f: jnp.sum(spec.from_flat(f).entropy()
                                      + spec.from_flat(f).kl(spec.from_flat(f * 2))))(flat[:3])
    assert np.all(np.isfinite(grad))


@settings(max_examples=12, deadline=None)
@given(nvec=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       seed=st.integers(0, 2**31 - 1))
def test_multi_categorical_is_a_normalised_joint_by_brute_force(nvec, seed):
    spec = MultiCategoricalSpec(tuple(nvec))
    rng = np.random.default_rng(seed)
    every_action = np.array(list(itertools.product(*(range(n) for n in nvec))), np.int32)
    flat_p, flat_q = (jnp.broadcast_to(jnp.asarray(rng.normal(size=spec.num_params) * 3,
                                                   jnp.float32),
                                       (len(every_action), spec.num_params)) for _ in range(2))
    p, q = spec.from_flat(flat_p), spec.from_flat(flat_q)
    log_p = np.asarray(p.log_prob(every_action), np.float64)
    log_q = np.asarray(q.log_prob(every_action), np.float64)
    np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(p.entropy()[0], -np.sum(np.exp(log_p) * log_p), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(p.kl(q)[0], np.sum(np.exp(log_p) * (log_p - log_q)), rtol=1e-3,
                               atol=1e-5)


# -------------------------------------------------------------------------------- gaussian


def test_diag_gaussian_matches_numpy_reference():
    mean_p, mean_q, log_std_p, log_std_q = RNG.normal(size=(4, 6, 3))
    x = RNG.normal(size=(6, 3)) * 2
    p = DiagGaussian(jnp.asarray(mean_p, jnp.float32), jnp.asarray(log_std_p, jnp.float32))
    q = DiagGaussian(jnp.asarray(mean_q, jnp.float32), jnp.asarray(log_std_q, jnp.float32))
    np.testing.assert_allclose(p.log_prob(x), np_gaussian_log_prob(x, mean_p, log_std_p),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p.entropy(),
                               np.sum(log_std_p + 0.5 * np.log(2 * np.pi * np.e), -1), rtol=1e-5)
    var_p, var_q = np.exp(2 * log_std_p), np.exp(2 * log_std_q)
    want_kl = np.sum(log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5,
                     -1)
    np.testing.assert_allclose(p.kl(q), want_kl, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p.kl(p), 0.0, atol=1e-6)


def test_diag_gaussian_kl_matches_monte_carlo():
    p = DiagGaussian(jnp.array([0.3, -1.0]), jnp.array([-0.2, 0.4]))
    q = DiagGaussian(jnp.array([0.0, 0.5]), jnp.array([0.1, 0.0]))
    samples = DiagGaussian(jnp.broadcast_to(p.mean, (200_000, 2)),
                           jnp.broadcast_to(p.log_std, (200_000, 2))).sample(jax.random.key(7))
    monte_carlo = np.mean(np.asarray(p.log_prob(samples) - q.log_prob(samples), np.float64))
    np.testing.assert_allclose(monte_carlo, float(p.kl(q)), atol=0.01)


def test_diag_gaussian_samples_have_the_right_moments():
    mean, log_std = np.array([1.0, -2.0]), np.array([0.5, -1.0])
    dist = DiagGaussian(jnp.broadcast_to(jnp.asarray(mean, jnp.float32), (50_000, 2)),
                        jnp.broadcast_to(jnp.asarray(log_std, jnp.float32), (50_000, 2)))
    samples = np.asarray(dist.sample(jax.random.key(1)), np.float64)
    standard_error = np.exp(log_std) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(samples.mean(0) - mean) < 4 * standard_error)
    np.testing.assert_allclose(samples.std(0), np.exp(log_std), rtol=0.02)


# ---------------------------------------------------------------------- squashed gaussian


def squashed(mean, log_std, low, high):
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return TanhDiagGaussian(jnp.asarray(mean, jnp.float32), jnp.asarray(log_std, jnp.float32),
                            loc=tuple((high + low) / 2), scale=tuple((high - low) / 2))


def test_the_spec_soft_bounds_the_pre_tanh_mean_and_keeps_its_gradient():
    spec = GaussianSpec(low=(-1.0,), high=(1.0,))

    def mean(raw):
        return spec.from_flat(jnp.array([raw, 0.0]))._base().mean[0]

    np.testing.assert_allclose(mean(0.3), 0.3, atol=1e-3)  # near-identity inside
    assert 4.99 < mean(1e4) <= SQUASHED_MEAN_BOUND and mean(-1e4) >= -SQUASHED_MEAN_BOUND
    # Far out, a boundary action under a negative advantage can no longer drag the mean
    # further: the mean stays below where float32 tanh rounds to the bound, and the
    # gradient that brings it back in is not zero.
    edge = jnp.array([1.0])
    assert float(jax.grad(lambda r: spec.from_flat(jnp.array([r, 0.0])).log_prob(edge))(
        30.0)) > 0.0
    assert float(jax.grad(mean)(30.0)) > 0.0


@pytest.mark.parametrize("value", [0.02, 0.6, 0.999])
def test_initial_params_give_the_requested_mode_through_the_soft_bound(value):
    spec = GaussianSpec(low=(0.0,), high=(1.0,))
    flat = spec.initial_params([value], log_std=-1.0, logit=0.0)
    np.testing.assert_allclose(spec.from_flat(jnp.asarray(flat)).mode(), [value], rtol=1e-4)


def test_squashed_log_prob_is_base_log_prob_minus_log_jacobian_from_autodiff():
    low, high = (-2.0, 0.0), (2.0, 1.0)
    dist = squashed([0.3, -0.5], [0.1, -0.7], low, high)
    u = jnp.array([0.2, -1.3])
    squash_dim = [lambda v, i=i: low[i] + (high[i] - low[i]) * (jnp.tanh(v) + 1) / 2
                  for i in range(2)]
    y = jnp.array([squash_dim[i](u[i]) for i in range(2)])
    log_det = sum(math.log(abs(float(jax.grad(squash_dim[i])(u[i])))) for i in range(2))
    want = np_gaussian_log_prob(np.asarray(u), [0.3, -0.5], [0.1, -0.7]) - log_det
    np.testing.assert_allclose(dist.log_prob(y), want, rtol=1e-5)


def test_squashed_density_integrates_to_one_over_the_box():
    low, high = -2.0, 3.0
    dist = squashed([[0.4]], [[-0.3]], [low], [high])
    grid = np.linspace(low, high, 200_001)[1:-1]
    density = np.exp(np.asarray(dist.log_prob(jnp.asarray(grid[:, None], jnp.float32)),
                                np.float64))
    np.testing.assert_allclose(np.trapezoid(density, grid), 1.0, atol=2e-3)


def test_squashed_log_prob_is_finite_at_the_exact_bounds_with_finite_gradients():
    dist = squashed([0.1, 0.2], [0.0, 0.0], (-1.0, 0.0), (1.0, 5.0))
    at_bounds = jnp.array([[-1.0, 0.0], [1.0, 5.0]])
    assert np.all(np.isfinite(dist.log_prob(at_bounds)))
    grad = jax.grad(lambda m: jnp.sum(squashed(m, [0.0, 0.0], (-1.0, 0.0), (1.0, 5.0))
                                      .log_prob(at_bounds)))(jnp.array([0.1, 0.2]))
    assert np.all(np.isfinite(grad))


def test_squashed_samples_stay_in_bounds_even_when_tanh_saturates():
    dist = squashed(jnp.full((1000, 2), 30.0), jnp.full((1000, 2), 2.0), (-1.0, 0.5), (1.0, 0.75))
    samples = np.asarray(dist.sample(jax.random.key(0)))
    assert np.all(samples >= [-1.0, 0.5]) and np.all(samples <= [1.0, 0.75])
    assert np.all(np.isfinite(dist.log_prob(samples)))


def test_squashed_entropy_is_the_base_entropy_and_the_estimate_matches_the_true_entropy():
    low, high = -1.0, 3.0
    dist = squashed([[0.2]], [[-0.4]], [low], [high])
    base = DiagGaussian(jnp.array([[0.2]]), jnp.array([[-0.4]]))
    np.testing.assert_allclose(dist.entropy(), base.entropy(), rtol=1e-6)
    # True differential entropy of the squashed density, by quadrature.
    grid = np.linspace(low, high, 400_001)[1:-1]
    log_density = np.asarray(dist.log_prob(jnp.asarray(grid[:, None], jnp.float32)), np.float64)
    true_entropy = -np.trapezoid(np.exp(log_density) * log_density, grid)
    many = squashed(jnp.full((100_000, 1), 0.2), jnp.full((100_000, 1), -0.4), [low], [high])
    estimate = np.mean(np.asarray(many.entropy_estimate(jax.random.key(2)), np.float64))
    np.testing.assert_allclose(estimate, true_entropy, atol=0.01)
    assert true_entropy < float(dist.entropy()[0]) + math.log((high - low) / 2)


def test_squashed_kl_is_the_base_kl_and_matches_monte_carlo():
    p = squashed([[0.5, -0.2]], [[-0.3, 0.1]], (-1.0, -2.0), (1.0, 2.0))
    q = squashed([[0.1, 0.3]], [[0.0, -0.2]], (-1.0, -2.0), (1.0, 2.0))
    samples = squashed(jnp.tile(p.mean, (200_000, 1)), jnp.tile(p.log_std, (200_000, 1)),
                       (-1.0, -2.0), (1.0, 2.0)).sample(jax.random.key(4))
    monte_carlo = np.mean(np.asarray(p.log_prob(samples) - q.log_prob(samples), np.float64))
    np.testing.assert_allclose(monte_carlo, float(p.kl(q)[0]), atol=0.01)
    np.testing.assert_allclose(p.kl(p), 0.0, atol=1e-6)


# ------------------------------------------------------------------------------ joint


def test_joint_log_prob_entropy_kl_are_sums_of_parts():
    parts_p = {"a": Categorical(jnp.asarray(RNG.normal(size=(3, 4)), jnp.float32)),
               "b": DiagGaussian(jnp.asarray(RNG.normal(size=(3, 2)), jnp.float32),
                                 jnp.asarray(RNG.normal(size=(3, 2)), jnp.float32))}
    parts_q = jax.tree.map(lambda v: v + 0.5, parts_p)
    p, q = Joint(parts_p), Joint(parts_q)
    x = p.sample(jax.random.key(0))
    assert set(x) == {"a", "b"} and x["a"].shape == (3,) and x["b"].shape == (3, 2)
    np.testing.assert_allclose(p.log_prob(x), parts_p["a"].log_prob(x["a"])
                               + parts_p["b"].log_prob(x["b"]), rtol=1e-6)
    np.testing.assert_allclose(p.entropy(), parts_p["a"].entropy() + parts_p["b"].entropy(),
                               rtol=1e-6)
    np.testing.assert_allclose(p.kl(q), parts_p["a"].kl(parts_q["a"])
                               + parts_p["b"].kl(parts_q["b"]), rtol=1e-6)


# -------------------------------------------------------------------- specs from spaces

DRIVING_ACTION_SPACE = gym.spaces.Dict({
    "continuous": gym.spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32),
                                 np.array([1.0, 1.0, 1.0], np.float32)),
    "discrete": gym.spaces.MultiDiscrete([3, 3]),
})


@pytest.mark.parametrize("space, num_params", [
    (gym.spaces.Discrete(2), 2),
    (gym.spaces.Box(-2.0, 2.0, (1,), np.float32), 2),
    (gym.spaces.MultiDiscrete([3, 5, 2]), 10),
    (DRIVING_ACTION_SPACE, 12),
    (gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (2,)))), 7),
])
def test_spec_from_space_samples_native_actions_inside_the_space(space, num_params):
    spec = make_action_distribution(space)
    assert spec.num_params == num_params
    flat = jnp.asarray(RNG.normal(size=(2, 4, num_params)), jnp.float32)
    dist = spec.from_flat(flat)
    for actions in (dist.sample(jax.random.key(0)), dist.mode()):
        assert dist.log_prob(actions).shape == (2, 4)
        actions = jax.tree.map(np.asarray, actions)
        for t in range(2):
            for b in range(4):
                one = jax.tree.map(lambda a, t=t, b=b: a[t, b], actions)
                if isinstance(space, gym.spaces.Tuple):
                    one = tuple(one)
                assert space.contains(one), one
    assert dist.entropy().shape == (2, 4) and dist.kl(dist).shape == (2, 4)


def test_driving_spec_is_a_joint_of_squashed_gaussian_and_multi_categorical():
    spec = make_action_distribution(DRIVING_ACTION_SPACE)
    assert isinstance(spec, JointSpec)
    assert isinstance(spec.parts[0], GaussianSpec) and isinstance(spec.parts[1],
                                                                  MultiCategoricalSpec)
    # Means are outputs, log-stds are state-independent constants, logits are outputs.
    assert spec.state_independent_mask == (False,) * 3 + (True,) * 3 + (False,) * 6
    dist = spec.from_flat(jnp.zeros((spec.num_params,)))
    assert isinstance(dist.parts["continuous"], TanhDiagGaussian)
    assert isinstance(dist.parts["discrete"], MultiCategorical)


def test_unsquashed_and_state_dependent_options():
    space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    spec = make_action_distribution(space, squash=False, state_dependent_std=True)
    assert spec.state_independent_mask == (False,) * 4
    dist = spec.from_flat(jnp.array([0.0, 1.0, -9.0, 9.0]))
    assert isinstance(dist, DiagGaussian)
    np.testing.assert_allclose(dist.log_std, [-5.0, 2.0])  # clipped to the default range
    with pytest.raises(ValueError, match="finite Box bounds"):
        make_action_distribution(space, squash=True)


@pytest.mark.parametrize("space", [
    gym.spaces.MultiBinary(3),
    gym.spaces.Discrete(3, start=1),
    gym.spaces.Box(-1.0, 1.0, (2, 2)),
])
def test_unsupported_spaces_raise_naming_the_space(space):
    with pytest.raises(TypeError, match=type(space).__name__):
        make_action_distribution(space)


def test_spec_rejects_wrong_flat_width():
    with pytest.raises(AssertionError):
        CategoricalSpec(3).from_flat(jnp.zeros((2, 4)))


def test_distributions_pass_through_jit_as_pytrees():
    spec = make_action_distribution(DRIVING_ACTION_SPACE)

    @jax.jit
    def sample_and_score(flat, key):
        dist = spec.from_flat(flat)
        action = dist.sample(key)
        return action, dist.log_prob(action), dist

    flat = jnp.asarray(RNG.normal(size=(3, spec.num_params)), jnp.float32)
    action, log_prob, dist = sample_and_score(flat, jax.random.key(0))
    np.testing.assert_allclose(log_prob, spec.from_flat(flat).log_prob(action), rtol=1e-6)
    assert isinstance(dist, Joint)
