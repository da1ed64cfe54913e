"""The functional agent: `init`, `act` (actors) and `evaluate` (learners).

`make_agent(observation_space, action_space, config)` returns an `Agent`: the static parts
(observation layout, action distribution spec, flax module) bound once, so that its methods
are pure functions of arrays that `jax.jit` compiles without static arguments:

    params = agent.init(key)
    state = agent.initial_state(batch_size)
    action, out, state = agent.act(params, obs, key, state, episode_start)         # [B]
    ev = agent.evaluate(params, obs_seq, actions, state_at_unroll_start, starts)  # [T, B]

Params are a plain pytree of dicts of arrays that `flax.serialization.msgpack_serialize` /
`msgpack_restore` round-trip, so actors receive exactly what the learner has:

    {"network": <flax params>,
     "obs_norm": {vector_key: {"mean": [*shape], "var": [*shape], "count": []}}}

The learner optimises `params["network"]` only and updates `params["obs_norm"]` with
`update_observation_stats` (running mean/variance, Chan et al.'s parallel merge, poolable
across devices). Observations are normalised inside `act` and `evaluate` by the same
function, so both always see identical inputs. Only vector keys are normalised (clipped to
`[-obs_norm_clip, obs_norm_clip]`); images and discrete keys never are.

Recurrent state: `core_state` is the LSTM `(cell, hidden)` tuple (`[B, H]` each) or `()`
without an LSTM; every function takes and returns it the same way either way.
`episode_start[t]` is True where observation `t` is the first of an episode; the state is
reset to zeros before that observation is consumed. An actor records the state it held before
the first observation of an unroll and ships it with the trajectory; `evaluate` starts from
it and returns the state to start the next unroll from.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import chex
import gymnasium as gym
import jax
import jax.numpy as jnp

from jaximpala.distributions import Distribution, DistributionSpec, make_action_distribution
from jaximpala.losses.normalization import (
    RunningMeanStdState,
    running_mean_std_init,
    running_mean_std_normalize,
    running_mean_std_update,
)
from jaximpala.networks import (
    ActorCritic,
    NetworkConfig,
    NetworkOutput,
    ObservationLayout,
    initial_core_state,
    observation_layout,
)

Array = chex.Array
Params = dict[str, Any]
CoreState = Any


class AgentOutput(NamedTuple):
    """What an actor records per step besides the action.

    log_prob: `[B]` log-probability of the sampled action under the acting policy.
    value: `[B]` value estimate of the observation.
    dist_params: `[B, P]` flat parameters of the acting distribution;
      `agent.distribution(dist_params)` rebuilds it (e.g. for KL(behaviour || target)).
    """

    log_prob: Array
    value: Array
    dist_params: Array


class Evaluation(NamedTuple):
    """The learner's view of an unroll of `T` steps.

    log_prob: `[T, B]` log-probabilities of the taken actions under `params`.
    entropy: `[T, B]` policy entropies (base Gaussian entropy for squashed Box parts, see
      `distributions.TanhDiagGaussian`).
    values: `[T + 1, B]` values of every observation; `values[T]` is the bootstrap value.
    dist: the policy distribution with batch dims `[T, B]`.
    core_state: the recurrent state after observation `T - 1`, i.e. the state to start the
      next unroll from (its first observation is this unroll's bootstrap observation).
    """

    log_prob: Array
    entropy: Array
    values: Array
    dist: Distribution
    core_state: CoreState


def _leading_shape(obs: Any, ndim: int) -> tuple[int, ...]:
    return tuple(jax.tree.leaves(obs)[0].shape[:ndim])


@dataclasses.dataclass(frozen=True, eq=False)
class Agent:
    """Static description of an agent; its methods are pure functions (see module doc)."""

    observation_space: gym.Space
    action_space: gym.Space
    config: NetworkConfig
    layout: ObservationLayout
    action_distribution: DistributionSpec
    network: ActorCritic

    def init(self, key: Array) -> Params:
        """Fresh params: orthogonally initialised network, identity observation statistics."""
        dummy = self.layout.dummy((1, 1))
        variables = self.network.init(key, dummy, self.initial_state(1),
                                      jnp.zeros((1, 1), bool))
        obs_norm = {}
        if self.config.normalize_observations:
            obs_norm = {key: running_mean_std_init(shape)._asdict()
                        for key, shape in self.layout.vectors}
        return {"network": variables["params"], "obs_norm": obs_norm}

    def initial_state(self, batch_size: int) -> CoreState:
        """Recurrent state for `batch_size` fresh episodes (`()` without an LSTM)."""
        return initial_core_state(self.config, batch_size)

    def distribution(self, dist_params: Array) -> Distribution:
        """Rebuilds the action distribution from flat parameters `[..., P]`."""
        return self.action_distribution.from_flat(dist_params)

    def normalize_observations(self, params: Params, obs: Any) -> dict[str, Array]:
        """Normalises and clips the vector keys of `obs` (`[..., *shape]` per key).

        Returns the observation as a dict keyed like the layout; other keys pass unchanged.
        """
        obs = self.layout.as_dict(obs)
        for key, stats in params["obs_norm"].items():
            # The statistics are data, not weights: a learner that differentiates the whole
            # params pytree must get zero gradient for them.
            stats = RunningMeanStdState(**jax.lax.stop_gradient(stats))
            obs[key] = running_mean_std_normalize(stats, jnp.asarray(obs[key], jnp.float32),
                                                  clip=self.config.obs_norm_clip)
        return obs

    def update_observation_stats(self, params: Params, obs: Any, *, mask: Array | None = None,
                                 axis_name: str | None = None) -> Params:
        """Merges a batch of observations into the running statistics of the vector keys.

        Args:
          params: agent params.
          obs: observations with any leading dims, e.g. `[T + 1, B, ...]` per key.
          mask: optional bool of those leading dims; False entries are left out.
          axis_name: pmap axis to pool the statistics over (every device ends equal).

        Returns:
          `params` with `obs_norm` updated and `network` untouched.
        """
        obs = self.layout.as_dict(obs)
        obs_norm = {
            key: running_mean_std_update(RunningMeanStdState(**stats),
                                         jnp.asarray(obs[key], jnp.float32), mask=mask,
                                         axis_name=axis_name)._asdict()
            for key, stats in params["obs_norm"].items()}
        return {**params, "obs_norm": obs_norm}

    def _forward(self, params: Params, obs_seq: Any, core_state: CoreState,
                 episode_start: Array) -> tuple[NetworkOutput, CoreState]:
        """The single path from raw observations `[T, B, ...]` to network outputs."""
        obs = self.normalize_observations(params, obs_seq)
        return self.network.apply({"params": params["network"]}, obs, core_state,
                                  jnp.asarray(episode_start, bool))

    def act(self, params: Params, obs: Any, key: Array, core_state: CoreState = (),
            episode_start: Array | None = None) -> tuple[Any, AgentOutput, CoreState]:
        """Samples one action per environment.

        Args:
          params: agent params.
          obs: one observation per environment, `[B, ...]` (dict of arrays for Dict spaces);
            uint8 images stay uint8.
          key: PRNG key for sampling.
          core_state: recurrent state before this observation (`()` without an LSTM).
          episode_start: optional bool `[B]`, True where `obs` begins an episode.

        Returns:
          `(action, AgentOutput, core_state)`: the action in the env's native form with a
          leading `[B]`, its log-prob, value and distribution parameters, and the recurrent
          state after this observation.
        """
        output, core_state = self._step(params, obs, core_state, episode_start)
        dist = self.distribution(output.dist_params[0])
        action = dist.sample(key)
        # Score the returned action, not the pre-squash sample, so the learner's log-prob
        # of the same action is identical.
        agent_output = AgentOutput(log_prob=dist.log_prob(action), value=output.values[0],
                                   dist_params=output.dist_params[0])
        return action, agent_output, core_state

    def act_greedy(self, params: Params, obs: Any, core_state: CoreState = (),
                   episode_start: Array | None = None) -> tuple[Any, CoreState]:
        """The policy's most likely action per environment (deterministic evaluation).

        Same arguments as `act` without the key; returns `(action [B], core_state)`.
        """
        output, core_state = self._step(params, obs, core_state, episode_start)
        return self.distribution(output.dist_params[0]).mode(), core_state

    def _step(self, params: Params, obs: Any, core_state: CoreState,
              episode_start: Array | None) -> tuple[NetworkOutput, CoreState]:
        """The network on one observation per environment `[B, ...]`, as a `[1, B]` sequence."""
        (batch,) = _leading_shape(obs, 1)
        if episode_start is None:
            episode_start = jnp.zeros((batch,), bool)
        obs_seq = jax.tree.map(lambda x: x[None], obs)
        return self._forward(params, obs_seq, core_state, episode_start[None])

    def evaluate(self, params: Params, obs_seq: Any, actions: Any, core_state: CoreState = (),
                 episode_start: Array | None = None) -> Evaluation:
        """Scores an unroll's actions and values every observation.

        Args:
          params: agent params.
          obs_seq: `T + 1` observations, `[T + 1, B, ...]`; the last is the bootstrap one.
          actions: the `T` actions taken, `[T, B, ...]` in the env's native form.
          core_state: recurrent state before `obs_seq[0]` (`()` without an LSTM).
          episode_start: optional bool `[T + 1, B]`, True where an observation begins an
            episode.

        Returns:
          `Evaluation` with log_prob/entropy `[T, B]`, values `[T + 1, B]`, the `[T, B]`
          distribution and the recurrent state to start the next unroll from.
        """
        steps_plus_one, batch = _leading_shape(obs_seq, 2)
        if episode_start is None:
            episode_start = jnp.zeros((steps_plus_one, batch), bool)
        chex.assert_shape(episode_start, (steps_plus_one, batch))
        steps = jax.tree.map(lambda x: x[:-1], obs_seq)
        bootstrap = jax.tree.map(lambda x: x[-1:], obs_seq)
        output, next_state = self._forward(params, steps, core_state, episode_start[:-1])
        bootstrap_output, _ = self._forward(params, bootstrap, next_state, episode_start[-1:])
        dist = self.distribution(output.dist_params)
        return Evaluation(
            log_prob=dist.log_prob(actions),
            entropy=dist.entropy(),
            values=jnp.concatenate([output.values, bootstrap_output.values], axis=0),
            dist=dist,
            core_state=next_state,
        )


def make_agent(observation_space: gym.Space, action_space: gym.Space,
               config: NetworkConfig | None = None) -> Agent:
    """Builds the agent for a pair of gymnasium spaces (see the module docstring)."""
    config = NetworkConfig() if config is None else config
    layout = observation_layout(observation_space)
    action_distribution = make_action_distribution(
        action_space, squash=config.squash_continuous,
        state_dependent_std=config.state_dependent_std,
        log_std_min=config.log_std_min, log_std_max=config.log_std_max)
    try:
        initial = action_distribution.initial_params(
            config.initial_action, log_std=config.initial_log_std, logit=config.initial_logit)
    except ValueError as error:  # name the config field: the env's action space decides
        raise ValueError(f"network.initial_action does not fit the env's action space "
                         f"{action_space}: {error}") from error
    network = ActorCritic(layout, config, action_distribution.state_independent_mask,
                          tuple(float(v) for v in initial))
    return Agent(observation_space, action_space, config, layout, action_distribution, network)
