import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaximpala.losses import (
    entropy_loss,
    importance_weight_metrics,
    policy_gradient_loss,
    ppo_clip_loss,
)


def _finite_difference_grad(fn, x, eps=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = eps
        grad[idx] = (fn(x + step) - fn(x - step)) / (2 * eps)
    return grad


def _tiny_case(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(3, 2, 4))
    actions = rng.integers(0, 4, size=(3, 2))
    behaviour_log_probs = np.log(np.full((3, 2), 0.25))
    advantages = rng.normal(size=(3, 2))
    mask = np.array([[True, True], [True, False], [False, True]])
    return logits, actions, behaviour_log_probs, advantages, mask


def _log_probs(logits, actions):
    return jnp.take_along_axis(jax.nn.log_softmax(logits), actions[..., None], -1)[..., 0]


@pytest.mark.parametrize("loss_name", ["pg", "ppo", "ppo_dual"])
def test_policy_loss_gradient_matches_finite_differences(loss_name):
    logits, actions, behaviour, advantages, mask = _tiny_case()

    def loss(logits):
        log_probs = _log_probs(logits, actions)
        if loss_name == "pg":
            return policy_gradient_loss(log_probs, advantages, mask=mask)[0]
        dual = 3.0 if loss_name == "ppo_dual" else None
        return ppo_clip_loss(log_probs, behaviour, advantages, clip_epsilon=0.2,
                             dual_clip=dual, mask=mask)[0]

    with jax.enable_x64(True):
        analytic = np.asarray(jax.grad(loss)(jnp.asarray(logits)))
        numeric = _finite_difference_grad(lambda x: float(loss(jnp.asarray(x))), logits)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    # Masked steps contribute no gradient at all.
    np.testing.assert_array_equal(analytic[~mask], 0.0)


def test_ppo_hand_worked_values_and_metrics():
    log_probs = jnp.log(jnp.array([[1.5, 1.5, 0.5, 1.1]]))
    behaviour = jnp.zeros((1, 4))
    advantages = jnp.array([[1.0, -1.0, -2.0, 3.0]])
    loss, metrics = ppo_clip_loss(log_probs, behaviour, advantages, clip_epsilon=0.2)
    # objectives: min(1.5, 1.2)=1.2; min(-1.5, -1.2)=-1.5; min(-1.0, -1.6)=-1.6; 3.3.
    np.testing.assert_allclose(loss, -(1.2 - 1.5 - 1.6 + 3.3) / 4, rtol=1e-6)
    np.testing.assert_allclose(metrics["clip_fraction"], 0.75)
    np.testing.assert_allclose(metrics["ratio_max"], 1.5, rtol=1e-6)
    expected_kl = np.mean([(r - 1) - np.log(r) for r in (1.5, 1.5, 0.5, 1.1)])
    np.testing.assert_allclose(metrics["approx_kl"], expected_kl, rtol=1e-5)

    dual_loss, dual_metrics = ppo_clip_loss(log_probs, behaviour, advantages,
                                            clip_epsilon=0.2, dual_clip=1.4)
    # The -1.5 objective is floored at 1.4 * -1 = -1.4; -1.6 at 1.4 * -2 = -2.8 is untouched.
    np.testing.assert_allclose(dual_loss, -(1.2 - 1.4 - 1.6 + 3.3) / 4, rtol=1e-6)
    np.testing.assert_allclose(dual_metrics["dual_clip_fraction"], 0.25)


def test_ppo_gradient_vanishes_outside_the_trust_region():
    def loss(log_probs):
        return ppo_clip_loss(log_probs, jnp.zeros((1, 2)), jnp.array([[1.0, -1.0]]))[0]

    grad = jax.grad(loss)(jnp.log(jnp.array([[1.5, 0.5]])))
    np.testing.assert_array_equal(grad, 0.0)


def test_ppo_rejects_bad_hyperparameters():
    x = jnp.zeros((2, 2))
    with pytest.raises(ValueError, match="clip_epsilon"):
        ppo_clip_loss(x, x, x, clip_epsilon=0.0)
    with pytest.raises(ValueError, match="dual_clip"):
        ppo_clip_loss(x, x, x, dual_clip=0.5)


def test_policy_gradient_loss_stops_advantage_gradient_and_reports_weights():
    log_probs = jnp.array([[-1.0, -2.0]])
    advantages = jnp.array([[2.0, -1.0]])
    grad_adv = jax.grad(lambda a: policy_gradient_loss(log_probs, a)[0])(advantages)
    np.testing.assert_array_equal(grad_adv, 0.0)
    loss, metrics = policy_gradient_loss(log_probs, advantages,
                                         log_rhos=jnp.log(jnp.array([[2.0, 0.5]])))
    np.testing.assert_allclose(loss, -(-2.0 + 2.0) / 2)
    np.testing.assert_allclose(metrics["rho_max"], 2.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["rho_clipped_fraction"], 0.5)
    np.testing.assert_allclose(metrics["rho_mean"], 1.25, rtol=1e-6)


def test_importance_weight_metrics_ignore_masked_steps():
    log_rhos = jnp.array([[0.0, 50.0], [jnp.log(3.0), 0.0]])
    mask = jnp.array([[True, False], [True, True]])
    metrics = importance_weight_metrics(log_rhos, mask=mask, clip_rho_threshold=2.0,
                                        clip_c_threshold=None)
    np.testing.assert_allclose(metrics["rho_max"], 3.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["rho_clipped_fraction"], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(metrics["c_clipped_fraction"], 0.0)
    assert all(np.isfinite(v) for v in metrics.values())


def test_entropy_loss_is_negative_masked_mean():
    loss, metrics = entropy_loss(jnp.array([[1.0, 3.0], [jnp.nan, 2.0]]),
                                 mask=jnp.array([[True, True], [False, True]]))
    np.testing.assert_allclose(loss, -2.0)
    np.testing.assert_allclose(metrics["entropy"], 2.0)
