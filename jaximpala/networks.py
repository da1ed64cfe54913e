"""Flax networks built from a gymnasium observation space.

One encoder per observation key, chosen by the key's space:

- image: a Box of rank 3 (HWC). uint8 images are scaled to `[0, 1]` inside the network, so
  actors ship raw bytes. Encoded by a CNN (Mnih et al. 2015 layout by default).
- vector: any other Box (flattened), e.g. LiDAR ranges or the ego state. Encoded by an MLP.
- discrete: a Discrete space, one-hot encoded then treated as a vector.

The encodings are concatenated, passed through an MLP torso, an optional LSTM core, and the
policy and value heads. A key absent from the Dict space simply has no encoder.

Initialisation follows the PPO literature (Engstrom et al. 2020, "Implementation Matters in
Deep Policy Gradients", https://arxiv.org/abs/2005.12729; Andrychowicz et al. 2021, "What
Matters in On-Policy RL", https://arxiv.org/abs/2006.05990): orthogonal weights with gain
sqrt(2) in hidden layers, 0.01 in the policy head (near-uniform initial policy) and 1.0 in the
value head, zero biases.

All inputs are time-major `[T, B, ...]`; the actor calls the network with `T = 1`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

Array = chex.Array

HIDDEN_GAIN = math.sqrt(2.0)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0

_ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "elu": nn.elu, "gelu": nn.gelu}

# Key under which a non-Dict observation space is encoded.
SINGLE_KEY = "obs"


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Sizes and options of the agent's network and action distribution.

    Attributes:
      cnn_channels, cnn_kernels, cnn_strides: one entry per conv layer of the image encoder.
      vector_mlp_sizes: hidden sizes of the MLP applied to each vector key.
      torso_sizes: hidden sizes of the MLP applied to the concatenated encodings.
      activation: one of "relu", "tanh", "elu", "gelu".
      use_lstm: put an LSTM core between the torso and the heads.
      lstm_size: LSTM hidden size.
      squash_continuous: tanh-squash Box actions into their bounds (else the env clips).
      state_dependent_std: Gaussian log-std is a head output (else a learned constant).
      log_std_min, log_std_max: clip range of the Gaussian log-std.
      initial_action: the action the untrained policy prefers (its mode), as a value of the
        action space (e.g. `{"continuous": [0.0, 0.6, 0.0], "discrete": [2, 0]}`); None
        starts neutral (zero means, uniform choices). A neutral start can be a trap: in
        the driving sim it presses throttle and brake equally and the car never moves.
      initial_log_std: starting log-std of Gaussian actions (lower: calmer exploration).
      initial_logit: how many nats the preferred discrete choice of `initial_action` starts
        above the others.
      normalize_observations: normalise vector keys with running mean/variance.
      obs_norm_clip: normalised vector observations are clipped to `[-clip, clip]`.
    """

    cnn_channels: tuple[int, ...] = (32, 64, 64)
    cnn_kernels: tuple[int, ...] = (8, 4, 3)
    cnn_strides: tuple[int, ...] = (4, 2, 1)
    vector_mlp_sizes: tuple[int, ...] = (64, 64)
    torso_sizes: tuple[int, ...] = (256,)
    activation: str = "relu"
    use_lstm: bool = False
    lstm_size: int = 256
    squash_continuous: bool = True
    state_dependent_std: bool = False
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    initial_action: dict | list | None = None
    initial_log_std: float = 0.0
    initial_logit: float = 2.0
    normalize_observations: bool = True
    obs_norm_clip: float = 5.0

    def __post_init__(self):
        def fail(field: str, why: str):
            raise ValueError(f"NetworkConfig.{field}: {why}, got {getattr(self, field)!r}")

        for field in ("cnn_channels", "cnn_kernels", "cnn_strides", "vector_mlp_sizes",
                      "torso_sizes"):
            value = getattr(self, field)
            if not isinstance(value, tuple) or not all(
                    isinstance(v, int) and v > 0 for v in value):
                fail(field, "must be a tuple of positive ints")
        if not len(self.cnn_channels) == len(self.cnn_kernels) == len(self.cnn_strides):
            fail("cnn_kernels", "cnn_channels, cnn_kernels and cnn_strides need equal lengths")
        if self.activation not in _ACTIVATIONS:
            fail("activation", f"must be one of {sorted(_ACTIVATIONS)}")
        if not (isinstance(self.lstm_size, int) and self.lstm_size > 0):
            fail("lstm_size", "must be a positive int")
        if not self.log_std_min < self.log_std_max:
            fail("log_std_min", "must be < log_std_max")
        if not self.log_std_min <= self.initial_log_std <= self.log_std_max:
            fail("initial_log_std", "must lie in [log_std_min, log_std_max]")
        if not self.obs_norm_clip > 0:
            fail("obs_norm_clip", "must be > 0")


@dataclasses.dataclass(frozen=True)
class ObservationLayout:
    """How each observation key is encoded; built once from the observation space.

    images, vectors: key -> shape of one observation (without `[T, B]`).
    discretes: key -> number of values.
    image_is_uint8: key -> whether the image arrives as uint8 bytes.
    is_dict: the space is a Dict (else observations are bare arrays under `SINGLE_KEY`).
    """

    images: tuple[tuple[str, tuple[int, ...]], ...]
    vectors: tuple[tuple[str, tuple[int, ...]], ...]
    discretes: tuple[tuple[str, int], ...]
    image_is_uint8: tuple[tuple[str, bool], ...]
    is_dict: bool

    @property
    def vector_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.vectors)

    def as_dict(self, obs: Any) -> dict[str, Array]:
        """The observation as a dict of arrays keyed like the layout."""
        if self.is_dict:
            return dict(obs)
        return {SINGLE_KEY: obs}

    def dummy(self, leading_shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Zero observations with leading dims `leading_shape`, in the dict form."""
        obs = {}
        uint8 = dict(self.image_is_uint8)
        for key, shape in self.images:
            obs[key] = np.zeros(leading_shape + shape, np.uint8 if uint8[key] else np.float32)
        for key, shape in self.vectors:
            obs[key] = np.zeros(leading_shape + shape, np.float32)
        for key, _ in self.discretes:
            obs[key] = np.zeros(leading_shape, np.int32)
        return obs


def observation_layout(observation_space: gym.Space) -> ObservationLayout:
    """Classifies each key of a Dict (or the single Box/Discrete) observation space.

    Raises:
      TypeError: for a space that is neither Box nor Discrete, naming its key.
    """
    if isinstance(observation_space, gym.spaces.Dict):
        items, is_dict = list(observation_space.spaces.items()), True
    else:
        items, is_dict = [(SINGLE_KEY, observation_space)], False
    images, vectors, discretes, uint8 = [], [], [], []
    for key, space in items:
        if isinstance(space, gym.spaces.Box) and len(space.shape) == 3:
            images.append((key, tuple(space.shape)))
            uint8.append((key, space.dtype == np.uint8))
        elif isinstance(space, gym.spaces.Box):
            vectors.append((key, tuple(space.shape)))
        elif isinstance(space, gym.spaces.Discrete) and int(space.start) == 0:
            discretes.append((key, int(space.n)))
        else:
            raise TypeError(f"unsupported observation space for key {key!r}: {space!r}")
    if not items:
        raise TypeError("the observation space has no keys")
    return ObservationLayout(tuple(images), tuple(vectors), tuple(discretes), tuple(uint8),
                             is_dict)


def _dense(features: int, gain: float = HIDDEN_GAIN, name: str | None = None,
           bias: np.ndarray | None = None) -> nn.Dense:
    bias_init = nn.initializers.zeros if bias is None else (
        lambda *_: jnp.asarray(bias, jnp.float32))
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain),
                    bias_init=bias_init, name=name)


class MLP(nn.Module):
    """Dense layers, each followed by the activation. `x`: `[N, D]` -> `[N, sizes[-1]]`."""

    sizes: tuple[int, ...]
    activation: str

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for size in self.sizes:
            x = _ACTIVATIONS[self.activation](_dense(size)(x))
        return x


class ImageEncoder(nn.Module):
    """Conv stack then flatten. `x`: `[N, H, W, C]` uint8 or float -> `[N, F]` float32."""

    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    activation: str
    scale_uint8: bool

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = x.astype(jnp.float32)
        if self.scale_uint8:
            x = x / 255.0
        for channels, kernel, stride in zip(self.channels, self.kernels, self.strides,
                                            strict=True):
            x = nn.Conv(channels, (kernel, kernel), strides=(stride, stride), padding="VALID",
                        kernel_init=nn.initializers.orthogonal(HIDDEN_GAIN),
                        bias_init=nn.initializers.zeros)(x)
            x = _ACTIVATIONS[self.activation](x)
        return x.reshape(x.shape[0], -1)


class LSTMCore(nn.Module):
    """LSTM unrolled over time, its state reset to zeros where an episode starts.

    `__call__(state, inputs [T, B, D], episode_start [T, B]) -> (state, outputs [T, B, H])`.
    The state is flax's `(cell, hidden)` tuple, each `[B, H]`. At step `t` the state is
    zeroed for rows with `episode_start[t]` *before* the input of step `t` is consumed, so the
    first observation of an episode never sees the previous episode.
    """

    size: int

    @nn.compact
    def __call__(self, state, inputs: Array, episode_start: Array):
        def step(cell, carry, xs):
            x, start = xs
            carry = jax.tree.map(
                lambda c: jnp.where(start[:, None], jnp.zeros_like(c), c), carry)
            return cell(carry, x)

        cell = nn.OptimizedLSTMCell(self.size, kernel_init=nn.initializers.orthogonal(1.0),
                                    recurrent_kernel_init=nn.initializers.orthogonal(1.0))
        unroll = nn.scan(step, variable_broadcast="params", split_rngs={"params": False})
        return unroll(cell, state, (inputs, episode_start))


def initial_core_state(config: NetworkConfig, batch_size: int):
    """Recurrent state for `batch_size` fresh episodes: LSTM `(cell, hidden)` zeros `[B, H]`,
    or the empty tuple without an LSTM."""
    if not config.use_lstm:
        return ()
    zeros = jnp.zeros((batch_size, config.lstm_size), jnp.float32)
    return (zeros, zeros)


class PolicyHead(nn.Module):
    """Maps features to the flat distribution parameters `[N, P]`.

    `state_independent_mask` (from the action distribution spec) marks parameters that are
    learned constants (a Gaussian's log-std) rather than outputs of the dense layer.
    """

    state_independent_mask: tuple[bool, ...]
    initial_params: tuple[float, ...]

    @nn.compact
    def __call__(self, x: Array) -> Array:
        mask = np.asarray(self.state_independent_mask, bool)
        initial = np.asarray(self.initial_params, np.float32)
        outputs = _dense(int((~mask).sum()), POLICY_GAIN, name="outputs",
                         bias=initial[~mask])(x)
        if not mask.any():
            return outputs
        log_std = self.param("log_std", lambda *_: jnp.asarray(initial[mask]),
                             (int(mask.sum()),))
        flat = jnp.zeros(x.shape[:-1] + mask.shape, outputs.dtype)
        flat = flat.at[..., np.flatnonzero(~mask)].set(outputs)
        return flat.at[..., np.flatnonzero(mask)].set(
            jnp.broadcast_to(log_std, x.shape[:-1] + log_std.shape))


class NetworkOutput(NamedTuple):
    """dist_params: `[T, B, P]` flat distribution parameters. values: `[T, B]`."""

    dist_params: Array
    values: Array


class ActorCritic(nn.Module):
    """Encoders, torso, optional LSTM, policy and value heads.

    `__call__(obs, core_state, episode_start) -> (NetworkOutput, core_state)` with `obs` a dict
    of `[T, B, ...]` arrays keyed like `layout` (vector keys already normalised),
    `episode_start` bool `[T, B]`, and `core_state` from `initial_core_state` (`()` without an
    LSTM). The returned state is the one after the last step.
    """

    layout: ObservationLayout
    config: NetworkConfig
    state_independent_mask: tuple[bool, ...]
    initial_policy_params: tuple[float, ...]

    def _encode(self, obs: Mapping[str, Array], leading: int) -> Array:
        """Flattens `[T, B]` to `[T*B]` and concatenates every key's encoding."""
        cfg = self.config
        uint8 = dict(self.layout.image_is_uint8)
        encodings = []
        for key, shape in self.layout.images:
            image = obs[key].reshape((leading, *shape))
            encodings.append(ImageEncoder(cfg.cnn_channels, cfg.cnn_kernels, cfg.cnn_strides,
                                          cfg.activation, uint8[key], name=f"image_{key}")(image))
        vectors = [(key, obs[key].reshape(leading, -1).astype(jnp.float32))
                   for key, _ in self.layout.vectors]
        vectors += [(key, jax.nn.one_hot(obs[key].reshape(leading), n))
                    for key, n in self.layout.discretes]
        for key, vector in vectors:
            encodings.append(MLP(cfg.vector_mlp_sizes, cfg.activation,
                                 name=f"vector_{key}")(vector))
        return jnp.concatenate(encodings, axis=-1)

    @nn.compact
    def __call__(self, obs: Mapping[str, Array], core_state, episode_start: Array):
        cfg = self.config
        time, batch = episode_start.shape
        features = self._encode(obs, time * batch)
        features = MLP(cfg.torso_sizes, cfg.activation, name="torso")(features)
        if cfg.use_lstm:
            core_state, outputs = LSTMCore(cfg.lstm_size, name="lstm")(
                core_state, features.reshape(time, batch, -1), episode_start)
            features = outputs.reshape(time * batch, -1)
        dist_params = PolicyHead(self.state_independent_mask, self.initial_policy_params,
                                 name="policy")(features)
        values = _dense(1, VALUE_GAIN, name="value")(features)[:, 0]
        return NetworkOutput(dist_params.reshape(time, batch, -1),
                             values.reshape(time, batch)), core_state
