"""The learner: `TrainState`, pure update steps for IMPALA / PPO / APPO, and `Learner`.

The core is pure: `make_update_fn` returns `update(state, batch, demos) -> (state, metrics)`
(`demos`: the imitation term's windows, or None without one; see `jaximpala.imitation`), a
function of arrays that `jax.pmap` runs data-parallel over local devices (gradients and
metrics are `pmean`-ed over `axis_name`; with `jax.distributed` the same axis spans every
host's devices). `Learner` is the thin shell that owns the replicated state, shards each
batch `[T, B] -> [devices, T, B / devices]` and stops the run on repeated non-finite steps.

- IMPALA: Espeholt et al. 2018, https://arxiv.org/abs/1802.01561
- PPO: Schulman et al. 2017, https://arxiv.org/abs/1707.06347
- APPO: the clipped surrogate on V-trace targets, as in Petrenko et al. 2020,
  "Sample Factory", https://arxiv.org/abs/2006.11751
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import chex
import flax
import jax
import jax.numpy as jnp
import optax

from jaximpala import imitation as imitation_lib
from jaximpala import losses
from jaximpala.agent import Agent, Evaluation
from jaximpala.config import AlgoConfig
from jaximpala.trajectory import Trajectory, shard_batch, take_columns

Array = chex.Array
Metrics = dict[str, Array]
AXIS = "devices"


@flax.struct.dataclass
class TrainState:
    """Everything an update reads and writes, as one pytree.

    params: agent params (`network` is optimised; `obs_norm` is running statistics).
    opt_state: optax state of `params["network"]`.
    kl: the adaptive KL-penalty coefficient.
    value_norm: PopArt statistics of the value targets (identity unless
      `algo.value_normalization == "popart"`).
    update_step: updates applied so far; also the params version actors report.
    key: PRNG key for minibatch shuffling.
    nonfinite_streak: consecutive updates skipped for a non-finite loss or gradient.
    nonfinite_total: all updates skipped so.
    """

    params: Any
    opt_state: Any
    kl: losses.AdaptiveKLState
    value_norm: losses.PopArtState
    update_step: Array
    key: Array
    nonfinite_streak: Array
    nonfinite_total: Array


class NonFiniteError(RuntimeError):
    """Too many consecutive updates had a non-finite loss or gradient."""


def optimizer_steps_per_update(algo: AlgoConfig) -> int:
    return 1 if algo.name == "impala" else algo.ppo_epochs * algo.num_minibatches


def make_optimizer(algo: AlgoConfig, num_updates: int
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Gradient clipping + Adam/RMSProp with the configured learning-rate schedule."""
    total_steps = max(1, num_updates * optimizer_steps_per_update(algo))
    if algo.lr_schedule == "linear":
        schedule = optax.linear_schedule(algo.learning_rate, 0.0, total_steps)
    elif algo.lr_schedule == "cosine":
        schedule = optax.cosine_decay_schedule(algo.learning_rate, total_steps)
    else:
        schedule = optax.constant_schedule(algo.learning_rate)
    if algo.optimizer == "adam":
        core = optax.adam(schedule, eps=algo.adam_eps)
    else:
        core = optax.rmsprop(schedule, eps=algo.adam_eps, decay=0.99)
    clip = [optax.clip_by_global_norm(algo.max_grad_norm)] if algo.max_grad_norm else []
    return optax.chain(*clip, core), schedule


def init_train_state(agent: Agent, optimizer: optax.GradientTransformation, algo: AlgoConfig,
                     key: Array) -> TrainState:
    init_key, state_key = jax.random.split(key)
    params = agent.init(init_key)
    return TrainState(
        params=params,
        opt_state=optimizer.init(params["network"]),
        kl=losses.AdaptiveKLState(coef=jnp.asarray(algo.kl_coef, jnp.float32)),
        value_norm=losses.popart_init(1),
        update_step=jnp.zeros((), jnp.int32),
        key=state_key,
        nonfinite_streak=jnp.zeros((), jnp.int32),
        nonfinite_total=jnp.zeros((), jnp.int32),
    )


def entropy_coef_at(algo: AlgoConfig, update_step: Array, num_updates: int) -> Array:
    """The entropy weight, annealed linearly when `entropy_coef_final` is set."""
    if algo.entropy_coef_final is None:
        return jnp.asarray(algo.entropy_coef, jnp.float32)
    return optax.linear_schedule(algo.entropy_coef, algo.entropy_coef_final,
                                 max(1, num_updates))(update_step)


def _evaluate(agent: Agent, params, network, batch: Trajectory) -> Evaluation:
    return agent.evaluate({**params, "network": network}, batch.observations, batch.actions,
                          batch.core_state, batch.episode_starts)


# With PopArt the value head's outputs live in a normalised space: targets (V-trace, GAE)
# are computed on the return scale, and the value loss is taken back in the head's space.
def _head_to_returns(algo: AlgoConfig, value_norm: losses.PopArtState, head: Array) -> Array:
    """`[...]` value-head outputs -> return scale (identity without PopArt)."""
    if algo.value_normalization != "popart":
        return head
    return losses.popart_unnormalize(value_norm, head[..., None])[..., 0]


def _returns_to_head(algo: AlgoConfig, value_norm: losses.PopArtState, returns: Array
                     ) -> Array:
    """`[...]` return-scale targets -> the value head's space (identity without PopArt)."""
    if algo.value_normalization != "popart":
        return returns
    return losses.popart_normalize(value_norm, returns[..., None])[..., 0]


def _per_unit_scale(algo: AlgoConfig, value_norm: losses.PopArtState, advantages: Array
                    ) -> Array:
    """PopArt divides policy-gradient advantages by sigma so their scale is reward-free."""
    if algo.value_normalization != "popart":
        return advantages
    return advantages / losses.popart_std(value_norm)[0]


def _behaviour_kl(agent: Agent, batch: Trajectory, evaluation: Evaluation) -> Array:
    """`[T, B]` exact KL(behaviour || current policy) from the recorded distribution."""
    return agent.distribution(batch.behaviour_dist_params).kl(evaluation.dist)


def _vtrace_targets(algo: AlgoConfig, batch: Trajectory, log_rhos: Array,
                    values: Array) -> losses.VTraceReturns:
    return losses.vtrace(
        log_rhos, batch.discounts, batch.rewards, values[:-1], values[-1], mask=batch.mask,
        clip_rho_threshold=algo.clip_rho_threshold, clip_c_threshold=algo.clip_c_threshold,
        clip_pg_rho_threshold=algo.clip_pg_rho_threshold, lambda_=algo.vtrace_lambda)


def impala_loss(network, params, batch: Trajectory, *, agent: Agent, algo: AlgoConfig,
                entropy_coef: Array, value_norm: losses.PopArtState,
                axis_name: str | None = None) -> tuple[Array, tuple[Metrics, Array]]:
    """V-trace actor-critic loss of a `[T, B]` batch.

    Returns `(loss, (metrics, vs))` with the `[T, B]` V-trace value targets on the return
    scale (what PopArt's statistics track).
    """
    evaluation = _evaluate(agent, params, network, batch)
    log_rhos = evaluation.log_prob - batch.behaviour_log_probs
    values = _head_to_returns(algo, value_norm, evaluation.values)
    targets = _vtrace_targets(algo, batch, log_rhos, values)
    advantages = _per_unit_scale(algo, value_norm, targets.pg_advantages)
    if algo.normalize_advantages:
        advantages = losses.normalize_advantages(advantages, mask=batch.mask,
                                                 axis_name=axis_name)
    pg_loss, pg_metrics = losses.policy_gradient_loss(
        evaluation.log_prob, advantages, mask=batch.mask, log_rhos=log_rhos,
        clip_rho_threshold=algo.clip_rho_threshold, clip_c_threshold=algo.clip_c_threshold,
        clip_pg_rho_threshold=algo.clip_pg_rho_threshold)
    v_loss, v_metrics = losses.value_loss(
        evaluation.values[:-1], _returns_to_head(algo, value_norm, targets.vs),
        mask=batch.mask, loss_type=algo.value_loss)
    ent_loss, ent_metrics = losses.entropy_loss(evaluation.entropy, mask=batch.mask)
    loss = pg_loss + algo.value_coef * v_loss + entropy_coef * ent_loss
    kl = losses.masked_mean(_behaviour_kl(agent, batch, evaluation), batch.mask)
    return loss, ({**pg_metrics, **v_metrics, **ent_metrics, "loss": loss,
                   "kl_behaviour_target_exact": kl}, targets.vs)


def _ppo_targets(algo: AlgoConfig, batch: Trajectory, values: Array, log_rhos: Array | None):
    """Advantages and value targets, `[T, B]` each, with stopped gradients.

    GAE on `values` when `log_rhos` is None (ppo); otherwise V-trace targets with the
    one-step advantage `r + gamma * v_{t+1} - V(x_t)` that the clipped ratio then weights
    (appo).
    """
    values = jax.lax.stop_gradient(values)
    if log_rhos is None:
        return losses.gae(batch.rewards, batch.discounts, values[:-1], values[-1],
                          lambda_=algo.gae_lambda, mask=batch.mask)
    vs = _vtrace_targets(algo, batch, jax.lax.stop_gradient(log_rhos), values).vs
    vs_tp1 = jnp.concatenate([vs[1:], values[-1:]], axis=0)
    advantages = batch.rewards + batch.discounts * vs_tp1 - values[:-1]
    return jnp.where(batch.mask, advantages, 0.0), vs


def ppo_loss(network, params, batch: Trajectory, advantages: Array | None,
             returns: Array | None, old_values: Array, *, agent: Agent, algo: AlgoConfig,
             entropy_coef: Array, kl_coef: Array, value_norm: losses.PopArtState,
             axis_name: str | None = None) -> tuple[Array, Metrics]:
    """Clipped-surrogate loss of a `[T, b]` minibatch.

    `advantages`/`returns` (return scale) are precomputed GAE (ppo) or None to compute
    V-trace targets from this minibatch's current values (appo). `old_values` `[T, b]`, in
    the value head's space, anchor value clipping.
    """
    evaluation = _evaluate(agent, params, network, batch)
    if advantages is None:
        log_rhos = evaluation.log_prob - batch.behaviour_log_probs
        values = _head_to_returns(algo, value_norm, evaluation.values)
        advantages, returns = _ppo_targets(algo, batch, values, log_rhos)
    advantages = _per_unit_scale(algo, value_norm, advantages)
    if algo.normalize_advantages:
        advantages = losses.normalize_advantages(advantages, mask=batch.mask,
                                                 axis_name=axis_name)
    pg_loss, pg_metrics = losses.ppo_clip_loss(
        evaluation.log_prob, batch.behaviour_log_probs, advantages, clip_epsilon=algo.ppo_clip,
        dual_clip=algo.dual_clip, mask=batch.mask)
    v_loss, v_metrics = losses.value_loss(
        evaluation.values[:-1], _returns_to_head(algo, value_norm, returns), mask=batch.mask,
        loss_type=algo.value_loss,
        old_values=old_values if algo.value_clip else None, clip_epsilon=algo.value_clip)
    ent_loss, ent_metrics = losses.entropy_loss(evaluation.entropy, mask=batch.mask)
    kl_loss, kl_metrics = losses.kl_penalty_loss(_behaviour_kl(agent, batch, evaluation),
                                                 coef=kl_coef, mask=batch.mask)
    loss = pg_loss + algo.value_coef * v_loss + entropy_coef * ent_loss + kl_loss
    return loss, {**pg_metrics, **v_metrics, **ent_metrics, **kl_metrics, "loss": loss}


def global_norm(tree) -> Array:
    """The L2 norm of all leaves of `tree` together."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def _all_finite(tree) -> Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _apply_gradients(state: TrainState, grads, loss: Array, optimizer, axis_name: str | None,
                     allowed: Array | bool = True) -> tuple[TrainState, Metrics]:
    """One optimizer step, skipped (params untouched) when anything is non-finite."""
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        loss = jax.lax.pmean(loss, axis_name)
    finite = jnp.isfinite(loss) & _all_finite(grads)
    network = state.params["network"]
    updates, opt_state = optimizer.update(grads, state.opt_state, network)
    new_network = optax.apply_updates(network, updates)
    apply = finite & allowed
    keep = lambda new, old: jnp.where(apply, new, old)
    state = state.replace(
        params={**state.params, "network": jax.tree.map(keep, new_network, network)},
        opt_state=jax.tree.map(keep, opt_state, state.opt_state),
        nonfinite_streak=jnp.where(finite, 0, state.nonfinite_streak + 1),
        nonfinite_total=state.nonfinite_total + (~finite).astype(jnp.int32),
    )
    return state, {"grad_norm": global_norm(grads), "finite": finite.astype(jnp.float32)}


def _update_value_norm(state: TrainState, targets: Array, mask: Array, algo: AlgoConfig,
                       axis_name: str | None) -> tuple[TrainState, Metrics]:
    """PopArt: moves the target statistics and rescales the value head to preserve outputs.

    `targets`, `mask`: `[T, B]` return-scale value targets of this update. Skipped when any
    valid target (on any device) is non-finite, so a poisoned batch cannot corrupt the
    statistics for the rest of the run.
    """
    if algo.value_normalization != "popart":
        return state, {}
    finite = jnp.all(jnp.where(mask, jnp.isfinite(targets), True)).astype(jnp.int32)
    if axis_name is not None:
        finite = jax.lax.pmin(finite, axis_name)
    network = state.params["network"]
    value_norm, kernel, bias = losses.popart_update(
        state.value_norm, network["value"]["kernel"], network["value"]["bias"],
        jnp.where(mask, targets, 0.0)[..., None], step_size=algo.popart_step_size, mask=mask,
        axis_name=axis_name)
    keep = lambda new, old: jnp.where(finite > 0, new, old)
    value_norm = jax.tree.map(keep, value_norm, state.value_norm)
    head = {"kernel": keep(kernel, network["value"]["kernel"]),
            "bias": keep(bias, network["value"]["bias"])}
    state = state.replace(value_norm=value_norm,
                          params={**state.params, "network": {**network, "value": head}})
    return state, {"value_norm_mean": value_norm.mean[0],
                   "value_norm_std": losses.popart_std(value_norm)[0]}


def _finish_update(state: TrainState, batch: Trajectory, agent: Agent, metrics: Metrics,
                   lr_schedule, step_count: Array, axis_name: str | None
                   ) -> tuple[TrainState, Metrics]:
    """Observation statistics, counters and the bookkeeping metrics shared by all algorithms."""
    params = agent.update_observation_stats(
        state.params, jax.tree.map(lambda x: x[1:], batch.observations), axis_name=axis_name)
    lag = (state.update_step - batch.policy_versions).astype(jnp.float32)
    metrics = {
        **metrics,
        "learning_rate": jnp.asarray(lr_schedule(step_count), jnp.float32),
        "param_norm": global_norm(state.params["network"]),
        "policy_lag_mean": jnp.mean(lag),
        "policy_lag_max": jnp.max(lag),
        "nonfinite_streak": state.nonfinite_streak.astype(jnp.float32),
        "nonfinite_total": state.nonfinite_total.astype(jnp.float32),
    }
    if axis_name is not None:
        metrics = jax.lax.pmean(metrics, axis_name)
    return state.replace(params=params, update_step=state.update_step + 1), metrics


def _imitation_step(imitation: imitation_lib.Imitation | None,
                    demos: imitation_lib.DemoWindows | None, key: Array, update_step: Array,
                    num_updates: int) -> tuple[imitation_lib.DemoWindows | None, Array]:
    """This optimizer step's demonstration windows and the term's weight (None and 0
    without an imitation term)."""
    if imitation is None:
        return None, jnp.zeros((), jnp.float32)
    if demos is None:
        raise ValueError("the update has an imitation term but no demonstration windows")
    return (imitation_lib.sample_windows(demos, key, imitation.columns),
            imitation_lib.coef_at(imitation, update_step, num_updates))


def impala_update(state: TrainState, batch: Trajectory,
                  demos: imitation_lib.DemoWindows | None = None, *, agent: Agent,
                  algo: AlgoConfig, optimizer, lr_schedule, num_updates: int,
                  imitation: imitation_lib.Imitation | None = None,
                  axis_name: str | None = None) -> tuple[TrainState, Metrics]:
    """One V-trace actor-critic step on a `[T, B]` batch (plus the imitation term on
    `demos`, when the run has one)."""
    entropy_coef = entropy_coef_at(algo, state.update_step, num_updates)
    loss_fn = functools.partial(impala_loss, agent=agent, algo=algo, entropy_coef=entropy_coef,
                                value_norm=state.value_norm, axis_name=axis_name)
    demo_key = jax.random.fold_in(jax.random.fold_in(state.key, imitation_lib.IMITATION_STREAM),
                                  state.update_step)
    demo_mb, coef = _imitation_step(imitation, demos, demo_key, state.update_step, num_updates)

    def total_loss(network, params, batch):
        loss, (metrics, vs) = loss_fn(network, params, batch)
        loss, metrics = imitation_lib.add_to_loss(loss, metrics, agent=agent, params=params,
                                                  network=network, windows=demo_mb, coef=coef)
        return loss, (metrics, vs)

    grads, (metrics, vs) = jax.grad(total_loss, has_aux=True)(state.params["network"],
                                                              state.params, batch)
    state, step_metrics = _apply_gradients(state, grads, metrics["loss"], optimizer, axis_name)
    state, norm_metrics = _update_value_norm(state, vs, batch.mask, algo, axis_name)
    metrics = {**metrics, **step_metrics, **norm_metrics, "entropy_coef": entropy_coef}
    return _finish_update(state, batch, agent, metrics, lr_schedule, state.update_step,
                          axis_name)


def ppo_update(state: TrainState, batch: Trajectory,
               demos: imitation_lib.DemoWindows | None = None, *, agent: Agent,
               algo: AlgoConfig, optimizer, lr_schedule, num_updates: int,
               imitation: imitation_lib.Imitation | None = None,
               axis_name: str | None = None) -> tuple[TrainState, Metrics]:
    """`ppo_epochs` passes of `num_minibatches` clipped-surrogate steps over a `[T, B]` batch.

    Minibatches are sets of whole columns, so sequences (and recurrent states) stay intact.
    With an imitation term, every step also scores its own draw of windows from `demos`.
    PPO computes GAE once from the values at the start of the update; APPO computes V-trace
    targets per minibatch from current values, which corrects for stale (off-policy) data.
    """
    use_gae = algo.name == "ppo"
    entropy_coef = entropy_coef_at(algo, state.update_step, num_updates)
    popart = algo.value_normalization == "popart"
    start = _evaluate(agent, state.params, state.params["network"], batch)
    start_head = jax.lax.stop_gradient(start.values)
    start_values = _head_to_returns(algo, state.value_norm, start_head)
    advantages, returns = (_ppo_targets(algo, batch, start_values, None) if use_gae
                           else (None, None))
    # Behaviour values were produced under older PopArt statistics: anchor on fresh ones.
    old_values = start_head[:-1] if use_gae or popart else batch.behaviour_values
    columns = batch.rewards.shape[1]
    per_minibatch = columns // algo.num_minibatches
    loss_fn = functools.partial(ppo_loss, agent=agent, algo=algo, entropy_coef=entropy_coef,
                                kl_coef=state.kl.coef, value_norm=state.value_norm,
                                axis_name=axis_name)

    def total_loss(network, params, mb, mb_adv, mb_ret, mb_old, demo_mb, coef):
        loss, metrics = loss_fn(network, params, mb, mb_adv, mb_ret, mb_old)
        return imitation_lib.add_to_loss(loss, metrics, agent=agent, params=params,
                                         network=network, windows=demo_mb, coef=coef)

    def minibatch_step(carry, xs):
        state, stopped = carry
        idx, demo_key = xs
        mb = take_columns(batch, idx)
        mb_adv, mb_ret = ((advantages[:, idx], returns[:, idx]) if use_gae else (None, None))
        demo_mb, coef = _imitation_step(imitation, demos, demo_key, state.update_step,
                                        num_updates)
        grads, metrics = jax.grad(total_loss, has_aux=True)(
            state.params["network"], state.params, mb, mb_adv, mb_ret, old_values[:, idx],
            demo_mb, coef)
        state, step_metrics = _apply_gradients(state, grads, metrics["loss"], optimizer,
                                               axis_name, allowed=~stopped)
        kl = metrics["approx_kl"]
        if axis_name is not None:
            kl = jax.lax.pmean(kl, axis_name)
        if algo.target_kl is not None:
            stopped = stopped | (kl > 1.5 * algo.target_kl)
        return (state, stopped), {**metrics, **step_metrics,
                                  "early_stopped": stopped.astype(jnp.float32)}

    def epoch(carry, key):
        order = jax.random.permutation(key, columns).reshape(algo.num_minibatches,
                                                             per_minibatch)
        # A stream of the epoch's key, so runs without the term keep their key sequence.
        demo_keys = (None if imitation is None else jax.random.split(
            jax.random.fold_in(key, imitation_lib.IMITATION_STREAM), algo.num_minibatches))
        return jax.lax.scan(minibatch_step, carry, (order, demo_keys), unroll=unroll)

    # XLA:CPU runs convolutions inside a while loop ~8x slower than unrolled (measured with
    # `jaximpala bench learner`, T=32 B=16), so on CPU the minibatch loops of a network with
    # an image encoder are unrolled. Without one, unrolling only lengthens compilation.
    unroll = jax.default_backend() == "cpu" and bool(agent.layout.images)
    key, shuffle_key = jax.random.split(state.key)
    state = state.replace(key=key)
    (state, _), metrics = jax.lax.scan(epoch, (state, jnp.asarray(False)),
                                       jax.random.split(shuffle_key, algo.ppo_epochs),
                                       unroll=unroll)
    metrics = jax.tree.map(jnp.mean, metrics)
    if popart:
        targets = returns if use_gae else _ppo_targets(
            algo, batch, start_values, start.log_prob - batch.behaviour_log_probs)[1]
        state, norm_metrics = _update_value_norm(state, targets, batch.mask, algo, axis_name)
        metrics.update(norm_metrics)
    if algo.adaptive_kl_target is not None:
        state = state.replace(kl=losses.adaptive_kl_update(state.kl, metrics["kl"],
                                                           target=algo.adaptive_kl_target))
    metrics["entropy_coef"] = entropy_coef
    step_count = (state.update_step + 1) * optimizer_steps_per_update(algo)
    return _finish_update(state, batch, agent, metrics, lr_schedule, step_count, axis_name)


def make_update_fn(agent: Agent, algo: AlgoConfig, optimizer, lr_schedule, num_updates: int,
                   axis_name: str | None = None,
                   imitation: imitation_lib.Imitation | None = None) -> Callable:
    """`update(state, batch, demos=None) -> (state, metrics)` for the configured algorithm;
    `imitation`'s schedule applies to the `demos` windows passed in (its own `windows` are
    not captured, so they stay an argument rather than a compiled-in constant)."""
    update = impala_update if algo.name == "impala" else ppo_update
    schedule = None if imitation is None else imitation._replace(windows=None)
    return functools.partial(update, agent=agent, algo=algo, optimizer=optimizer,
                             lr_schedule=lr_schedule, num_updates=num_updates,
                             imitation=schedule, axis_name=axis_name)


class Learner:
    """Owns the train state replicated over local devices and applies pmapped updates.

    Args:
      agent: the functional agent.
      algo: algorithm config.
      num_updates: updates in the run (for schedules).
      key: PRNG key of the run's learner.
      devices: devices to be data-parallel over (default: all local devices). In a
        multi-process run (`jax.distributed`), the default pmaps over every process's
        devices, so gradients are averaged across hosts; each process feeds its own local
        devices' shards.
      state: a host `TrainState` to start from (e.g. restored from a checkpoint) instead
        of a fresh one; it must come from the same agent and algo config.
      imitation: an imitation term on demonstrations (`jaximpala.imitation`); its host
        windows are split over the local devices once and stay there.
    """

    def __init__(self, agent: Agent, algo: AlgoConfig, *, num_updates: int, key: Array,
                 devices: list | None = None, state: TrainState | None = None,
                 imitation: imitation_lib.Imitation | None = None):
        self.agent = agent
        self.algo = algo
        self.devices = list(devices or jax.local_devices())
        # pmap over all hosts' devices when jax.distributed spans several processes.
        self._pmap_devices = (jax.devices() if devices is None and jax.process_count() > 1
                              else self.devices)
        self.optimizer, self.lr_schedule = make_optimizer(algo, num_updates)
        if state is None:
            state = init_train_state(agent, self.optimizer, algo, key)
        self.state = self._replicate(state)
        self._demos = None if imitation is None else self._put_sharded(
            imitation_lib.shard_windows(imitation.windows, len(self.devices)))
        update = make_update_fn(agent, algo, self.optimizer, self.lr_schedule, num_updates,
                                axis_name=AXIS, imitation=imitation)
        self._update = jax.pmap(update, axis_name=AXIS, devices=self._pmap_devices,
                                donate_argnums=0)

    def _replicate(self, tree):
        return self._put_sharded(jax.tree.map(lambda x: jnp.stack([x] * len(self.devices)),
                                              tree))

    def _put_sharded(self, stacked):
        """`[D, ...]` host arrays onto the devices, slice d on device d."""
        # Same axis name as the update, so its sharding matches the update's outputs and
        # the second update does not recompile.
        return jax.pmap(lambda x: x, axis_name=AXIS, devices=self._pmap_devices)(stacked)

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    def update(self, batch: Trajectory) -> dict[str, float]:
        """Applies one update to a host batch `[T, B, ...]` and returns its metrics."""
        return self.update_sharded(shard_batch(batch, self.num_devices))

    def update_sharded(self, batch: Trajectory) -> dict[str, float]:
        """Applies one update to a batch already split `[D, T, B / D, ...]` over the
        devices (a host array or one `device_put` ahead, see `prefetch.Batcher`)."""
        self.state, metrics = self._update(self.state, batch, self._demos)
        metrics = {k: float(v[0]) for k, v in jax.device_get(metrics).items()}
        if metrics["nonfinite_streak"] >= self.algo.max_nonfinite_updates:
            raise NonFiniteError(
                f"{int(metrics['nonfinite_streak'])} consecutive updates had a non-finite loss "
                f"or gradient (algo.max_nonfinite_updates={self.algo.max_nonfinite_updates}); "
                "params were left at the last finite update")
        return metrics

    def host_state(self) -> TrainState:
        """The train state from the first device, on the host."""
        return jax.device_get(jax.tree.map(lambda x: x[0], self.state))

    @property
    def params(self) -> Any:
        """Params for actors (host copy)."""
        return jax.device_get(jax.tree.map(lambda x: x[0], self.state.params))

    @property
    def version(self) -> int:
        return int(self.state.update_step[0])
