"""Action distributions as pytrees, and the spec that builds them from a gymnasium space.

A distribution is a `flax.struct.dataclass` whose leaves are its per-sample parameters
(logits; mean and log-std), so it passes through `jit`, `vmap` and `jax.tree.map`, and slicing
its leaves slices the batch. Every distribution has the same five methods, so the agent has
one code path for discrete, continuous and hybrid actions:

    sample(key) -> x        log_prob(x) -> [...]      entropy() -> [...]
    kl(other) -> [...]      mode() -> x

where `[...]` are the batch dims (e.g. `[B]` or `[T, B]`) and `x` is an action in the
environment's native form with those leading dims.

A `DistributionSpec` is built once from the gymnasium action space
(`make_action_distribution`). It says how many network outputs the policy head needs
(`num_params`), which of them are state-independent parameters rather than outputs of a
dense layer (`state_independent_mask`: the log-std of a Gaussian with
`state_dependent_std=False`), and turns the flat `[..., num_params]` head output into the
distribution (`from_flat`). The flat vector is what actors ship as the behaviour policy's
distribution parameters: `spec.from_flat(dist_params)` rebuilds the behaviour distribution.

Box actions: with `squash=True` (the default) a Gaussian sample `u` is mapped into the box by
`low + (high - low) * (tanh(u) + 1) / 2`, and `log_prob` includes the change-of-variables
correction (Haarnoja et al. 2018, "Soft Actor-Critic", https://arxiv.org/abs/1801.01290,
appendix C). With `squash=False` the raw Gaussian sample is the action and the environment
clips it; `log_prob` is then the Gaussian's, evaluated at the unclipped sample the agent chose.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Protocol

import chex
import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Array = chex.Array

# Padding logit for MultiDiscrete components with fewer choices than the largest. Finite, so
# that `0 * logit` stays 0 in the entropy, the KL and their gradients (with -inf they are NaN).
_PAD_LOGIT = -1e9

# `atanh` is evaluated on the squashed action clipped to `[-1 + eps, 1 - eps]`, so that actions
# exactly at the bounds (from the environment, or tanh rounding to 1 in float32) keep a finite
# log-prob. 1e-6 is representable next to 1 in float32 (spacing ~6e-8).
_ATANH_EPS = 1e-6

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

# Soft bound on the pre-tanh mean of a squashed Gaussian: `5 * tanh(raw / 5)`. Without it the
# mean can run past where float32 `tanh` rounds to the bound (|u| > ~9): sampled actions then
# arrive at the learner as exactly the bound, their recovered `u` stops at atanh(1 - eps) ~ 7.25,
# and a negative advantage on them pushes the mean further out, without end (seen on the
# driving env: brake means at -5e4 after 1.9M steps, then every parameter blew up). Inside
# the bound every action short of the box edge stays reachable (tanh(5) = 0.99991).
SQUASHED_MEAN_BOUND = 5.0


@struct.dataclass
class Categorical:
    """Categorical distribution over the last axis.

    logits: `[..., K]` unnormalised log-probabilities. Actions are int32 `[...]`.
    """

    logits: Array

    def _log_probs(self) -> Array:
        return jax.nn.log_softmax(self.logits, axis=-1)

    def sample(self, key: Array) -> Array:
        return jax.random.categorical(key, self.logits, axis=-1).astype(jnp.int32)

    def mode(self) -> Array:
        return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)

    def log_prob(self, x: Array) -> Array:
        """`x`: int `[...]` -> `[...]`."""
        index = jnp.asarray(x).astype(jnp.int32)[..., None]
        return jnp.take_along_axis(self._log_probs(), index, axis=-1)[..., 0]

    def entropy(self) -> Array:
        log_p = self._log_probs()
        return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)

    def kl(self, other: Categorical) -> Array:
        """KL(self || other), `[...]`."""
        log_p, log_q = self._log_probs(), other._log_probs()
        return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


@struct.dataclass
class MultiCategorical:
    """Independent categoricals, one per component (gymnasium MultiDiscrete).

    logits: `[..., N, K_max]`; a component with fewer than `K_max` choices has its unused
    logits at a large negative value, so it never samples them. Actions are int32 `[..., N]`.
    """

    logits: Array

    def _components(self) -> Categorical:
        return Categorical(self.logits)

    def sample(self, key: Array) -> Array:
        return self._components().sample(key)

    def mode(self) -> Array:
        return self._components().mode()

    def log_prob(self, x: Array) -> Array:
        """`x`: int `[..., N]` -> `[...]`."""
        return jnp.sum(self._components().log_prob(x), axis=-1)

    def entropy(self) -> Array:
        return jnp.sum(self._components().entropy(), axis=-1)

    def kl(self, other: MultiCategorical) -> Array:
        return jnp.sum(self._components().kl(other._components()), axis=-1)


@struct.dataclass
class DiagGaussian:
    """Gaussian with diagonal covariance.

    mean, log_std: `[..., D]`. Actions are float `[..., D]`.
    """

    mean: Array
    log_std: Array

    def sample(self, key: Array) -> Array:
        noise = jax.random.normal(key, jnp.shape(self.mean), jnp.result_type(self.mean))
        return self.mean + jnp.exp(self.log_std) * noise

    def mode(self) -> Array:
        return self.mean

    def log_prob(self, x: Array) -> Array:
        """`x`: `[..., D]` -> `[...]`."""
        z = (x - self.mean) * jnp.exp(-self.log_std)
        return jnp.sum(-0.5 * jnp.square(z) - self.log_std - _HALF_LOG_2PI, axis=-1)

    def entropy(self) -> Array:
        return jnp.sum(self.log_std + 0.5 + _HALF_LOG_2PI, axis=-1)

    def kl(self, other: DiagGaussian) -> Array:
        """Closed-form KL(self || other), `[...]`."""
        var_ratio = jnp.exp(2.0 * (self.log_std - other.log_std))
        mean_term = jnp.square((self.mean - other.mean) * jnp.exp(-other.log_std))
        return jnp.sum(0.5 * (var_ratio + mean_term - 1.0) - (self.log_std - other.log_std),
                       axis=-1)


def _log_abs_det_tanh(u: Array) -> Array:
    """`log(1 - tanh(u)^2)`, written so it neither overflows nor loses precision at large |u|."""
    return 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))


@struct.dataclass
class TanhDiagGaussian:
    """Diagonal Gaussian pushed through `y = loc + scale * tanh(u)` into `[low, high]`.

    mean, log_std: `[..., D]` parameters of the base Gaussian over `u`.
    loc, scale: static per-dimension `(high + low) / 2` and `(high - low) / 2`.

    `kl` is exact: KL divergence is invariant under a bijection shared by both arguments, so
    it equals the base Gaussians' KL. `entropy` has no closed form; it returns the base
    Gaussian's entropy, the quantity PPO-style entropy bonuses regularise in practice
    (the squashed entropy is `base entropy + E[sum log|dy/du|]` and never exceeds
    `base entropy + sum(log(scale))`). `entropy_estimate(key)` gives a one-sample unbiased
    estimate of the squashed entropy for logging.
    """

    mean: Array
    log_std: Array
    loc: tuple[float, ...] = struct.field(pytree_node=False)
    scale: tuple[float, ...] = struct.field(pytree_node=False)

    def _base(self) -> DiagGaussian:
        return DiagGaussian(self.mean, self.log_std)

    def _bounds(self) -> tuple[Array, Array]:
        loc, scale = np.asarray(self.loc), np.asarray(self.scale)
        return jnp.asarray(loc - scale, jnp.float32), jnp.asarray(loc + scale, jnp.float32)

    def _squash(self, u: Array) -> Array:
        y = jnp.asarray(self.loc, jnp.float32) + jnp.asarray(self.scale, jnp.float32) * jnp.tanh(u)
        # tanh rounds to +-1 in float32; the clip keeps `loc + scale` rounding inside the box.
        return jnp.clip(y, *self._bounds())

    def _unsquash(self, y: Array) -> Array:
        unit = (y - jnp.asarray(self.loc, jnp.float32)) / jnp.asarray(self.scale, jnp.float32)
        return jnp.arctanh(jnp.clip(unit, -1.0 + _ATANH_EPS, 1.0 - _ATANH_EPS))

    def _log_abs_det_jacobian(self, u: Array) -> Array:
        log_scale = jnp.asarray(np.log(self.scale), jnp.float32)
        return jnp.sum(log_scale + _log_abs_det_tanh(u), axis=-1)

    def sample(self, key: Array) -> Array:
        return self._squash(self._base().sample(key))

    def mode(self) -> Array:
        return self._squash(self.mean)

    def log_prob(self, x: Array) -> Array:
        """`x`: `[..., D]` inside `[low, high]` (bounds included) -> `[...]`."""
        u = self._unsquash(x)
        return self._base().log_prob(u) - self._log_abs_det_jacobian(u)

    def entropy(self) -> Array:
        """The base Gaussian's entropy (see the class docstring)."""
        return self._base().entropy()

    def entropy_estimate(self, key: Array) -> Array:
        """One-sample unbiased estimate of the squashed distribution's entropy, `[...]`."""
        u = self._base().sample(key)
        return self._base().entropy() + self._log_abs_det_jacobian(u)

    def kl(self, other: TanhDiagGaussian) -> Array:
        if (self.loc, self.scale) != (other.loc, other.scale):
            raise ValueError("KL between squashed Gaussians needs the same bounds")
        return self._base().kl(other._base())


@struct.dataclass
class Joint:
    """Independent parts of a Dict or Tuple action space.

    parts: a dict (Dict space) or tuple (Tuple space) of distributions with the same batch
    dims. Actions are a dict/tuple of the parts' actions; log-probs, entropies and KLs add.
    """

    parts: Any

    def _items(self) -> list[tuple[Any, Any]]:
        if isinstance(self.parts, Mapping):
            return list(self.parts.items())
        return list(enumerate(self.parts))

    def _rebuild(self, values: list[Any]) -> Any:
        if isinstance(self.parts, Mapping):
            return dict(zip(self.parts.keys(), values, strict=True))
        return tuple(values)

    def sample(self, key: Array) -> Any:
        keys = jax.random.split(key, len(self._items()))
        return self._rebuild([part.sample(k) for (_, part), k in zip(self._items(), keys,
                                                                       strict=True)])

    def mode(self) -> Any:
        return self._rebuild([part.mode() for _, part in self._items()])

    def log_prob(self, x: Any) -> Array:
        return sum(part.log_prob(x[name]) for name, part in self._items())

    def entropy(self) -> Array:
        return sum(part.entropy() for _, part in self._items())

    def kl(self, other: Joint) -> Array:
        return sum(part.kl(other.parts[name]) for name, part in self._items())


Distribution = Categorical | MultiCategorical | DiagGaussian | TanhDiagGaussian | Joint


class DistributionSpec(Protocol):
    """Static description of an action distribution (hashable; not a pytree)."""

    @property
    def num_params(self) -> int:
        """Width `P` of the flat parameter vector."""

    @property
    def state_independent_mask(self) -> tuple[bool, ...]:
        """Length-`P` flags: True where the parameter is a learned constant, not an output."""

    def from_flat(self, flat: Array) -> Distribution:
        """`[..., P]` flat parameters -> distribution with batch dims `[...]`."""

    def initial_params(self, action: Any, *, log_std: float, logit: float) -> np.ndarray:
        """`[P]` flat parameters whose mode is `action` (None: the neutral zero vector).

        Continuous parts get that mean and `log_std`; a discrete choice gets `logit` more
        than the others. The policy head starts from these (its output bias).
        """


def _preferred_logits(choice: Any, num_actions: int, logit: float, what: str) -> np.ndarray:
    logits = np.zeros(num_actions, np.float32)
    if choice is not None:
        if not (isinstance(choice, int | np.integer) and 0 <= choice < num_actions):
            raise ValueError(f"initial action of {what} must be an int in "
                             f"[0, {num_actions}), got {choice!r}")
        logits[int(choice)] = logit
    return logits


@dataclasses.dataclass(frozen=True)
class CategoricalSpec:
    """Discrete(n): `n` logits."""

    num_actions: int

    @property
    def num_params(self) -> int:
        return self.num_actions

    @property
    def state_independent_mask(self) -> tuple[bool, ...]:
        return (False,) * self.num_actions

    def from_flat(self, flat: Array) -> Categorical:
        chex.assert_shape(flat, (..., self.num_params))
        return Categorical(flat)

    def initial_params(self, action: Any, *, log_std: float, logit: float) -> np.ndarray:
        return _preferred_logits(action, self.num_actions, logit, "Discrete")


@dataclasses.dataclass(frozen=True)
class MultiCategoricalSpec:
    """MultiDiscrete(nvec): `sum(nvec)` logits, padded per component to `max(nvec)`."""

    nvec: tuple[int, ...]

    @property
    def num_params(self) -> int:
        return sum(self.nvec)

    @property
    def state_independent_mask(self) -> tuple[bool, ...]:
        return (False,) * self.num_params

    def _padded_index(self) -> tuple[np.ndarray, np.ndarray]:
        """`[N, K_max]` indices into the flat logits, and which of them are real choices."""
        k_max = max(self.nvec)
        offsets = np.cumsum((0, *self.nvec[:-1]))
        choice = np.arange(k_max)
        valid = choice[None, :] < np.asarray(self.nvec)[:, None]
        index = np.where(valid, offsets[:, None] + choice[None, :], 0)
        return index, valid

    def from_flat(self, flat: Array) -> MultiCategorical:
        chex.assert_shape(flat, (..., self.num_params))
        index, valid = self._padded_index()
        logits = jnp.where(valid, flat[..., index], jnp.asarray(_PAD_LOGIT, flat.dtype))
        return MultiCategorical(logits)

    def initial_params(self, action: Any, *, log_std: float, logit: float) -> np.ndarray:
        choices = [None] * len(self.nvec) if action is None else list(action)
        if len(choices) != len(self.nvec):
            raise ValueError(f"initial action of MultiDiscrete{list(self.nvec)} needs "
                             f"{len(self.nvec)} entries, got {action!r}")
        return np.concatenate([_preferred_logits(c, n, logit, f"MultiDiscrete[{i}]")
                               for i, (c, n) in enumerate(zip(choices, self.nvec, strict=True))])


@dataclasses.dataclass(frozen=True)
class GaussianSpec:
    """Box(low, high, (D,)): `D` means then `D` log-stds (clipped to the configured range).

    With `squash`, actions lie in `[low, high]` (`TanhDiagGaussian`); without, they are raw
    Gaussian samples (`DiagGaussian`) that the environment clips.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    squash: bool = True
    state_dependent_std: bool = False
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    def __post_init__(self):
        if len(self.low) != len(self.high):
            raise ValueError("GaussianSpec: low and high must have the same length")
        if self.squash and not all(math.isfinite(v) for v in (*self.low, *self.high)):
            raise ValueError("GaussianSpec: squash=True needs finite Box bounds; "
                             "use squash=False for unbounded action spaces")
        if self.squash and not all(h > lo for lo, h in zip(self.low, self.high, strict=True)):
            raise ValueError("GaussianSpec: squash=True needs high > low in every dimension")
        if not self.log_std_min < self.log_std_max:
            raise ValueError("GaussianSpec: log_std_min must be < log_std_max")

    @property
    def dim(self) -> int:
        return len(self.low)

    @property
    def num_params(self) -> int:
        return 2 * self.dim

    @property
    def state_independent_mask(self) -> tuple[bool, ...]:
        return (False,) * self.dim + (not self.state_dependent_std,) * self.dim

    def from_flat(self, flat: Array) -> DiagGaussian | TanhDiagGaussian:
        chex.assert_shape(flat, (..., self.num_params))
        mean = flat[..., : self.dim]
        log_std = jnp.clip(flat[..., self.dim:], self.log_std_min, self.log_std_max)
        if not self.squash:
            return DiagGaussian(mean, log_std)
        mean = SQUASHED_MEAN_BOUND * jnp.tanh(mean / SQUASHED_MEAN_BOUND)
        loc = tuple((h + lo) / 2.0 for lo, h in zip(self.low, self.high, strict=True))
        scale = tuple((h - lo) / 2.0 for lo, h in zip(self.low, self.high, strict=True))
        return TanhDiagGaussian(mean, log_std, loc=loc, scale=scale)

    def initial_params(self, action: Any, *, log_std: float, logit: float) -> np.ndarray:
        mean = np.zeros(self.dim, np.float64)
        if action is not None:
            value = np.asarray(action, np.float64)
            low, high = np.asarray(self.low), np.asarray(self.high)
            if value.shape != (self.dim,) or not np.all(np.isfinite(value)):
                raise ValueError(f"initial action of Box({self.dim}) needs {self.dim} finite "
                                 f"numbers, got {action!r}")
            if self.squash and not np.all((value > low) & (value < high)):
                raise ValueError(f"initial action {list(value)} must lie strictly inside "
                                 f"the Box bounds {list(low)}..{list(high)}")
            mean = value
            if self.squash:
                unit = (value - (high + low) / 2.0) / ((high - low) / 2.0)
                # the raw output whose soft-bounded mean is atanh(unit)
                mean = SQUASHED_MEAN_BOUND * np.arctanh(np.clip(
                    np.arctanh(unit) / SQUASHED_MEAN_BOUND, -1 + 1e-6, 1 - 1e-6))
        log_stds = np.full(self.dim, np.clip(log_std, self.log_std_min, self.log_std_max))
        return np.concatenate([mean, log_stds]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class JointSpec:
    """Dict or Tuple space: the parts' flat parameters concatenated in the space's key order."""

    names: tuple[Any, ...]
    parts: tuple[DistributionSpec, ...]
    is_dict: bool

    @property
    def num_params(self) -> int:
        return sum(part.num_params for part in self.parts)

    @property
    def state_independent_mask(self) -> tuple[bool, ...]:
        return tuple(flag for part in self.parts for flag in part.state_independent_mask)

    def from_flat(self, flat: Array) -> Joint:
        chex.assert_shape(flat, (..., self.num_params))
        splits = np.cumsum([part.num_params for part in self.parts])[:-1]
        chunks = jnp.split(flat, splits, axis=-1)
        dists = [part.from_flat(chunk) for part, chunk in zip(self.parts, chunks, strict=True)]
        if self.is_dict:
            return Joint(dict(zip(self.names, dists, strict=True)))
        return Joint(tuple(dists))

    def initial_params(self, action: Any, *, log_std: float, logit: float) -> np.ndarray:
        if action is None:
            parts = [None] * len(self.parts)
        elif self.is_dict:
            unknown = sorted(set(action) - set(self.names))
            if unknown:
                raise ValueError(f"initial action names unknown action keys {unknown}; the "
                                 f"space has {list(self.names)}")
            parts = [action.get(name) for name in self.names]
        else:
            parts = list(action)
        return np.concatenate([part.initial_params(a, log_std=log_std, logit=logit)
                               for part, a in zip(self.parts, parts, strict=True)])


def make_action_distribution(
    action_space: gym.Space,
    *,
    squash: bool = True,
    state_dependent_std: bool = False,
    log_std_min: float = -5.0,
    log_std_max: float = 2.0,
) -> DistributionSpec:
    """Builds the distribution spec for a gymnasium action space.

    Supports Discrete, MultiDiscrete (1-D `nvec`), Box (1-D) and Dict/Tuple spaces of these,
    nested. Discrete/MultiDiscrete spaces must start at 0 (gymnasium's default).

    Raises:
      TypeError: for any other space, naming it.
    """
    def build(space: gym.Space) -> DistributionSpec:
        if isinstance(space, gym.spaces.Discrete):
            if int(space.start) != 0:
                raise TypeError(f"Discrete action spaces must start at 0, got {space}")
            return CategoricalSpec(int(space.n))
        if isinstance(space, gym.spaces.MultiDiscrete):
            if space.nvec.ndim != 1 or np.any(space.start != 0):
                raise TypeError(f"MultiDiscrete needs 1-D nvec starting at 0, got {space}")
            return MultiCategoricalSpec(tuple(int(n) for n in space.nvec))
        if isinstance(space, gym.spaces.Box):
            if len(space.shape) != 1:
                raise TypeError(f"Box action spaces must be 1-D, got shape {space.shape}")
            return GaussianSpec(
                low=tuple(float(v) for v in space.low), high=tuple(float(v) for v in space.high),
                squash=squash, state_dependent_std=state_dependent_std,
                log_std_min=log_std_min, log_std_max=log_std_max)
        if isinstance(space, gym.spaces.Dict):
            names = tuple(space.spaces.keys())
            return JointSpec(names, tuple(build(space[n]) for n in names), is_dict=True)
        if isinstance(space, gym.spaces.Tuple):
            return JointSpec(tuple(range(len(space))), tuple(build(s) for s in space),
                             is_dict=False)
        raise TypeError(f"unsupported action space: {space!r}")

    return build(action_space)
