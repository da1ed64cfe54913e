"""A behaviour-cloning warm start: fit the agent to a scripted demonstrator before RL.

RL from scratch on the driving env learns to drive but not the last few percent of safe
driving that the scripted baseline shows (experiments/README.md, runs 18-30). Here the
baseline's commands become the starting point instead:

    demos = collect_demonstrations(env, baseline_policy(env), steps_per_env=..., ...)
    params, value_norm, history = fit(agent, demos, params=params, popart=True, ...)

`collect_demonstrations` records time-major `[T, B]` demonstrations from a vector env,
executing the demonstrator's commands with noise on the continuous controls while keeping
the clean commands as labels (Laskey et al. 2017, "DART: Noise Injection for Robust
Imitation Learning", https://arxiv.org/abs/1703.09327): the states the learner visits when
it errs a little are in the data, labelled with how the demonstrator recovers.

`fit` is truncated back-propagation through time over windows of `unroll_length` steps,
carrying the recurrent state from one window into the next as the learner does with
unrolls. The loss (`bc_loss`, a pure function) is the policy's negative log-likelihood of
the labels plus the value head's squared error against the demonstrations' discounted
returns (PopArt-normalised when the run uses PopArt), so RL starts with a critic that
already knows what the demonstrated driving is worth. The log-std is fitted too: for a
deterministic demonstrator it settles at the policy's own residual error, which is the noise
a sampled policy can afford (frozen at the RL default of e^-1, the sampled clone weaved off
the road in 88% of held-out `easy` episodes; fitted, in 7%).

`warm_start(config, agent, train_state, key=learner_key)` runs both for `jaximpala train`
when `pretrain.demo_env_steps > 0` (optionally with DAgger rounds); with `pretrain.bc_coef`
the demonstrations also stay in the RL loss (`jaximpala.imitation`). It is off in every
shipped config: in experiments/README.md, RL from the clone did no better than RL from
scratch on `easy` over three seeds, at the default learning rate (run 32) or at 1e-4 after
a DAgger round (run 34, where one seed was the best agent so far and two were worse).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaximpala import losses
from jaximpala.agent import Agent, CoreState, Params
from jaximpala.imitation import DemoWindows, demo_windows
from jaximpala.learner import global_norm
from jaximpala.rollout import EpisodeTracker, episode_means, finite_rewards

Array = chex.Array
Policy = Callable[[Any, np.ndarray], Any]

# How far inside a Box's bounds the labels are moved (`inside_box`), as a fraction of its
# range: atanh(1 - 2e-3) = 3.5 is well inside the squashed mean's bound of 5.
LABEL_MARGIN = 1e-3
# The warm start's keys are a stream of the learner's key, apart from its init and shuffling.
WARM_START_STREAM = 1


class Demonstrations(NamedTuple):
    """Recorded demonstrations, time-major.

    observations: pytree of `[T + 1, B, ...]`.
    actions: pytree of `[T, B, ...]`, the demonstrator's clean commands (the labels).
    mask: `[T, B]` bool, False on next-step autoreset transitions (no label: the env ignored
      the action).
    episode_starts: `[T + 1, B]` bool, True where an observation begins an episode.
    returns: `[T, B]` float32, discounted return of the executed commands from step t.
    returns_mask: `[T, B]` bool, True where that return is complete (its episode terminated
      inside the recording; a time-out or the recording's end leaves it unknown).
    episodes: per-episode stats of the demonstrations (`rollout.EpisodeTracker`).
    """

    observations: Any
    actions: Any
    mask: np.ndarray
    episode_starts: np.ndarray
    returns: np.ndarray
    returns_mask: np.ndarray
    episodes: list[dict]


class WarmStartStats(NamedTuple):
    """What a warm start did.

    demo_env_steps: env steps recorded over all rounds.
    demo_episodes: episode means of round 0's recording (the baseline's own driving).
    history: one metrics dict per epoch, with its `round` and `epoch`.
    seconds: wall-clock time of the whole warm start.
    """

    demo_env_steps: int
    demo_episodes: dict[str, float]
    history: list[dict[str, float]]
    seconds: float


def discounted_returns(rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                       mask: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Discounted returns-to-go within each episode of a recording.

    Args:
      rewards, terminated, truncated, mask: `[T, B]`; `mask` False on autoreset transitions.
      gamma: discount.

    Returns:
      `(returns, complete)`, `[T, B]` float32 and bool: `returns[t] = r_t + gamma r_{t+1} +
      ...` to the end of t's episode or of the recording, and `complete[t]` True where that
      episode terminated inside the recording (so the sum is the whole return).
    """
    chex.assert_equal_shape([rewards, terminated, truncated, mask])
    g_tp1 = np.zeros(rewards.shape[1], np.float64)
    complete_tp1 = np.zeros(rewards.shape[1], bool)
    returns = np.zeros(rewards.shape, np.float32)
    complete = np.zeros(rewards.shape, bool)
    for t in reversed(range(rewards.shape[0])):
        ended = terminated[t] | truncated[t]
        g_t = rewards[t] + gamma * np.where(ended, 0.0, g_tp1)
        complete_t = np.where(ended, terminated[t], complete_tp1)
        g_tp1 = np.where(mask[t], g_t, 0.0)
        complete_tp1 = mask[t] & complete_t
        returns[t], complete[t] = g_tp1, complete_tp1
    return returns, complete


def map_float_boxes(fn: Callable[[np.ndarray, gym.spaces.Box], np.ndarray], action: Any,
                    space: gym.Space) -> Any:
    """`fn(part, box)` applied to the float Box parts of `action` (a batch `[N, ...]` of
    `space`'s samples, Dict and Tuple spaces walked); other parts are returned as they are."""
    if isinstance(space, gym.spaces.Dict):
        return {key: map_float_boxes(fn, action[key], space[key]) for key in action}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(map_float_boxes(fn, a, s) for a, s in zip(action, space, strict=True))
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return fn(np.asarray(action), space)
    return action


def _finite_span(box: gym.spaces.Box, unbounded: float) -> np.ndarray:
    span = box.high - box.low
    return np.where(np.isfinite(span), span, unbounded)


def perturb_action(action: Any, space: gym.Space, rng: np.random.Generator,
                   scale: float) -> Any:
    """`action` (a batch of `space`'s samples) with Gaussian noise on its float Box parts,
    `scale` x half of each bound's range (1 where unbounded), clipped to the box."""
    def perturb(x, box):
        noise = rng.standard_normal(x.shape) * scale * _finite_span(box, 2.0) / 2
        return np.clip(x + noise, box.low, box.high).astype(box.dtype)

    return map_float_boxes(perturb, action, space)


def inside_box(action: Any, space: gym.Space, margin: float) -> Any:
    """`action` (a batch of `space`'s samples) with its float Box parts clipped to
    `margin` x range inside their bounds.

    A squashed Gaussian's mean is soft-bounded (`distributions.SQUASHED_MEAN_BOUND`), so a
    label exactly at a bound (full throttle, no brake) lies out of its reach and its
    log-likelihood gradient never vanishes: such labels would outweigh every other."""
    def clip(x, box):
        inset = margin * _finite_span(box, 0.0)
        return np.clip(x, box.low + inset, box.high - inset).astype(box.dtype)

    return map_float_boxes(clip, action, space)


def collect_demonstrations(env: gym.vector.VectorEnv, demonstrator: Policy, *,
                           steps_per_env: int, gamma: float, action_noise: float, seed: int,
                           rng: np.random.Generator, executor: Policy | None = None
                           ) -> Demonstrations:
    """Records `steps_per_env` steps of every env of `env`, labelled by `demonstrator`.

    Args:
      env: a gymnasium VectorEnv with next-step autoreset; it is reset with `seed`.
      demonstrator: `policy(obs [B, ...], episode_start [B]) -> action [B, ...]`, whose
        actions are the labels (e.g. `evaluation.baseline_policy(env)`); it is asked at
        every step, so a stateful one follows the episode whoever drives.
      steps_per_env: T.
      gamma: discount of the recorded returns.
      action_noise: see `perturb_action` (0: execute the labels as they are).
      seed: seed of the env's reset.
      rng: the generator of the action noise.
      executor: a policy like `demonstrator` whose actions are executed instead of the
        noisy labels (DAgger: the learner drives, the demonstrator labels what it sees).
    """
    obs, _ = env.reset(seed=seed)
    episode_start = np.ones(env.num_envs, bool)
    resetting = np.zeros(env.num_envs, bool)
    tracker = EpisodeTracker(env.num_envs)
    columns = {name: [] for name in ("actions", "rewards", "terminated", "truncated", "mask")}
    observations, starts, episodes = [obs], [episode_start], []
    for _ in range(steps_per_env):
        label = demonstrator(obs, episode_start)
        action = (perturb_action(label, env.single_action_space, rng, action_noise)
                  if executor is None else executor(obs, episode_start))
        obs, reward, terminated, truncated, info = env.step(action)
        reward = finite_rewards(reward)
        valid = ~resetting
        ended = (terminated | truncated) & valid
        episodes += tracker.step(reward, info, valid, ended)
        for name, value in (("actions", label), ("rewards", reward),
                            ("terminated", terminated), ("truncated", truncated),
                            ("mask", valid)):
            columns[name].append(value)
        episode_start, resetting = resetting.copy(), ended
        observations.append(obs)
        starts.append(episode_start)
    stack = lambda *xs: np.stack(xs)
    mask = np.stack(columns["mask"])
    returns, complete = discounted_returns(
        np.stack(columns["rewards"]), np.stack(columns["terminated"]),
        np.stack(columns["truncated"]), mask, gamma)
    return Demonstrations(
        observations=jax.tree.map(stack, *observations),
        actions=jax.tree.map(stack, *columns["actions"]), mask=mask,
        episode_starts=np.stack(starts), returns=returns, returns_mask=complete,
        episodes=episodes)


def join_demonstrations(first: Demonstrations, second: Demonstrations) -> Demonstrations:
    """Two recordings of the same length side by side: `[T, B1] + [T, B2] -> [T, B1 + B2]`."""
    joined = jax.tree.map(lambda a, b: np.concatenate([a, b], axis=1),
                          first._replace(episodes=None), second._replace(episodes=None))
    return joined._replace(episodes=first.episodes + second.episodes)


def popart_from_returns(returns: np.ndarray, mask: np.ndarray) -> losses.PopArtState:
    """PopArt statistics `[1]` set to the mean and second moment of the valid returns (the
    identity statistics when none is valid: then no value target is either)."""
    valid = np.asarray(returns, np.float64)[np.asarray(mask, bool)]
    if valid.size == 0:
        return losses.popart_init(1)
    return losses.PopArtState(mean=jnp.asarray([valid.mean()], jnp.float32),
                              second_moment=jnp.asarray([np.mean(valid ** 2)], jnp.float32))


def bc_loss(network: Params, params: Params, window: Demonstrations, core_state: CoreState,
            value_norm: losses.PopArtState | None, *, agent: Agent, value_coef: float
            ) -> tuple[Array, tuple[dict[str, Array], CoreState]]:
    """Negative log-likelihood of the labels plus the value error, on one window.

    Args:
      network: the network params to differentiate.
      params: the rest of the agent params (observation statistics).
      window: `Demonstrations` fields of one window: observations `[L + 1, B, ...]`,
        actions, mask, returns, returns_mask `[L, B]`, episode_starts `[L + 1, B]`.
      core_state: recurrent state before `window.observations[0]`.
      value_norm: PopArt statistics the value head's targets are normalised with (None:
        the head predicts returns directly).
      agent: the agent.
      value_coef: weight of the value loss.

    Returns:
      `(loss, (metrics, core_state))`: the state to start the next window from.
    """
    chex.assert_equal_shape([window.mask, window.returns, window.returns_mask])
    ev = agent.evaluate({**params, "network": network}, window.observations, window.actions,
                        core_state, window.episode_starts)
    nll = -losses.masked_mean(ev.log_prob, window.mask)
    targets = window.returns
    if value_norm is not None:
        targets = losses.popart_normalize(value_norm, targets[..., None])[..., 0]
    value_error = ev.values[:-1] - targets
    value_loss = 0.5 * losses.masked_mean(jnp.square(value_error), window.returns_mask)
    metrics = {"nll": nll, "value_loss": value_loss,
               "entropy": losses.masked_mean(ev.entropy, window.mask)}
    return nll + value_coef * value_loss, (metrics, ev.core_state)


def make_bc_step(agent: Agent, optimizer: optax.GradientTransformation, *, value_coef: float):
    """`step(params, opt_state, window, core_state, value_norm) -> (params, opt_state,
    core_state, metrics)`, jit-compiled; `window` as in `bc_loss`."""

    @jax.jit
    def step(params, opt_state, window, core_state, value_norm):
        grad_fn = jax.grad(bc_loss, has_aux=True)
        grads, (metrics, next_state) = grad_fn(params["network"], params, window, core_state,
                                               value_norm, agent=agent, value_coef=value_coef)
        updates, opt_state = optimizer.update(grads, opt_state, params["network"])
        network = optax.apply_updates(params["network"], updates)
        metrics["grad_norm"] = global_norm(grads)
        return {**params, "network": network}, opt_state, next_state, metrics

    return step


def _window(demos: Demonstrations, start: int, length: int) -> Demonstrations:
    steps = slice(start, start + length)
    with_bootstrap = slice(start, start + length + 1)
    return demos._replace(
        observations=jax.tree.map(lambda x: x[with_bootstrap], demos.observations),
        actions=jax.tree.map(lambda x: x[steps], demos.actions),
        mask=demos.mask[steps], episode_starts=demos.episode_starts[with_bootstrap],
        returns=demos.returns[steps], returns_mask=demos.returns_mask[steps], episodes=None)


def fit(agent: Agent, demos: Demonstrations, *, params: Params, popart: bool,
        unroll_length: int, epochs: int, learning_rate: float, max_grad_norm: float | None,
        value_coef: float, on_epoch: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False
        ) -> tuple[Params, losses.PopArtState | None, list[dict]]:
    """Behaviour cloning of `demos` into `params` (see the module docstring).

    `params["obs_norm"]` is used as it is (merge the demonstrations into it first with
    `agent.update_observation_stats`). Each epoch walks the windows of `unroll_length` steps
    in time order from zero recurrent state (a trailing part shorter than a window is left
    out), one Adam step per window over all columns. `on_epoch` gets each epoch's mean
    metrics; `should_stop()` is asked between windows.

    Returns:
      `(params, value_norm, history)`: value_norm is the PopArt statistics the value head
      was fitted in (None unless `popart`), history one metrics dict per epoch.
    """
    steps = demos.mask.shape[0]
    if not demos.returns_mask.any():
        warnings.warn("no demonstrated episode ended by termination inside the recording, so "
                      "no return is known and the value head is not fitted; record more "
                      "pretrain.demo_env_steps per env", stacklevel=2)
    if steps < unroll_length:
        raise ValueError(f"{steps} demonstration steps per env are fewer than one window of "
                         f"{unroll_length}: record more pretrain.demo_env_steps")
    demos = demos._replace(actions=inside_box(demos.actions, agent.action_space,
                                              LABEL_MARGIN))
    value_norm = popart_from_returns(demos.returns, demos.returns_mask) if popart else None
    on_device = jax.device_put(demos._replace(episodes=None))
    clip = [optax.clip_by_global_norm(max_grad_norm)] if max_grad_norm else []
    optimizer = optax.chain(*clip, optax.adam(learning_rate))
    opt_state = optimizer.init(params["network"])
    step = make_bc_step(agent, optimizer, value_coef=value_coef)
    history = []
    for epoch in range(epochs):
        core_state, sums = agent.initial_state(demos.mask.shape[1]), []
        for start in range(0, steps - unroll_length + 1, unroll_length):
            if should_stop():
                return params, value_norm, history
            params, opt_state, core_state, metrics = step(
                params, opt_state, _window(on_device, start, unroll_length), core_state,
                value_norm)
            sums.append(metrics)
        means = {k: float(np.mean([m[k] for m in jax.device_get(sums)])) for k in sums[0]}
        if not all(np.isfinite(v) for v in means.values()):
            raise FloatingPointError(f"behaviour cloning diverged in epoch {epoch + 1}: "
                                     f"{means}; try a lower pretrain.learning_rate")
        history.append({"epoch": epoch + 1, **means})
        if on_epoch is not None:
            on_epoch(history[-1])
    return params, value_norm, history


def _with_round(on_epoch: Callable[[dict], None] | None, round_: int):
    if on_epoch is None:
        return None
    return lambda metrics: on_epoch({"round": round_, **metrics})


def warm_start(config, agent: Agent, train_state, *, key: Array,
               on_epoch: Callable[[dict], None] | None = None,
               should_stop: Callable[[], bool] = lambda: False):
    """`train_state` with params (and PopArt statistics) fitted to the driving env's baseline.

    Round 0 records the baseline driving (with `pretrain.action_noise`) and fits it; each of
    `pretrain.dagger_rounds` more records as much again with the clone driving (sampled
    actions) and the baseline labelling, and refits on everything recorded so far (Ross et
    al. 2011, "DAgger", https://arxiv.org/abs/1011.0686). Round r resets its envs with
    seed `config.seed + r * pretrain.num_envs`, so every round sees new scenarios.

    Args:
      config: the run's `RunConfig`; `config.pretrain` sizes the warm start.
      agent: the run's agent.
      train_state: the fresh `learner.TrainState` to start from.
      key: the run's learner key; the recording's action noise and the clone's sampling
        draw from their own stream of it (`fold_in(key, WARM_START_STREAM)`).
      on_epoch: gets each epoch's metrics, with its `round`.
      should_stop: asked between windows; True ends the warm start where it is.

    Returns:
      `(train_state, WarmStartStats, demonstrations)`: the stats' demonstration episodes
      are round 0's (the baseline's own driving); the demonstrations are every round's
      recording side by side (None if stopped before the first), for an imitation term
      during RL (`imitation_windows`).
    """
    from jaximpala.evaluation import agent_policy, baseline_policy
    from jaximpala.inline import make_vector_env

    tick = time.perf_counter()
    pretrain = config.pretrain
    noise_key, clone_key = jax.random.split(jax.random.fold_in(key, WARM_START_STREAM))
    rng = np.random.default_rng(np.asarray(jax.random.key_data(noise_key)))
    popart = config.algo.value_normalization == "popart"
    params, value_norm, demos = train_state.params, None, None
    history, baseline_episodes = [], []
    env = make_vector_env(config.env.id, pretrain.num_envs, config.env.kwargs)
    try:
        for round_ in range(pretrain.dagger_rounds + 1):
            if should_stop():
                break
            executor = None if round_ == 0 else agent_policy(
                agent, params, greedy=False, key=jax.random.fold_in(clone_key, round_))
            recorded = collect_demonstrations(
                env, baseline_policy(env), executor=executor,
                steps_per_env=pretrain.demo_env_steps // pretrain.num_envs,
                gamma=config.algo.gamma, action_noise=pretrain.action_noise,
                seed=config.seed + round_ * pretrain.num_envs, rng=rng)
            if round_ == 0:
                baseline_episodes = recorded.episodes
            params = agent.update_observation_stats(params, recorded.observations)
            demos = recorded if demos is None else join_demonstrations(demos, recorded)
            params, value_norm, fitted = fit(
                agent, demos, params=params, popart=popart,
                unroll_length=config.algo.unroll_length, epochs=pretrain.epochs,
                learning_rate=pretrain.learning_rate, max_grad_norm=config.algo.max_grad_norm,
                value_coef=pretrain.value_coef, should_stop=should_stop,
                on_epoch=_with_round(on_epoch, round_))
            history += [{"round": round_, **m} for m in fitted]
    finally:
        env.close()
    train_state = train_state.replace(params=params)
    if popart and value_norm is not None:
        train_state = train_state.replace(value_norm=value_norm)
    stats = WarmStartStats(demo_env_steps=0 if demos is None else int(demos.mask.size),
                           demo_episodes=episode_means(baseline_episodes), history=history,
                           seconds=time.perf_counter() - tick)
    return train_state, stats, demos


def imitation_windows(demos: Demonstrations, agent: Agent, *, length: int, burn_in: int
                      ) -> DemoWindows:
    """`imitation.demo_windows` of `demos`, labels moved inside the action space as `fit`
    moves them (`LABEL_MARGIN`)."""
    labels = inside_box(demos.actions, agent.action_space, LABEL_MARGIN)
    return demo_windows(demos._replace(actions=labels), length=length, burn_in=burn_in)
