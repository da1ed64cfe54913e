"""Typed, frozen, validated configuration.

Every config is a frozen dataclass that validates itself on construction and names the
offending field in its error. Derived sizes (e.g. updates per run) are computed by
functions from the config, never written back into it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import pathlib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Literal

import yaml

from jaximpala.envs.driving.registration import ENV_IDS as DRIVING_ENV_IDS
from jaximpala.networks import NetworkConfig


def _fail(owner: object, field: str, why: str):
    raise ValueError(f"{type(owner).__name__}.{field}: {why}, got "
                     f"{getattr(owner, field)!r}")


def _check_positive(owner, *fields: str, integer: bool = False):
    for field in fields:
        value = getattr(owner, field)
        ok = isinstance(value, int) and not isinstance(value, bool) if integer else (
            isinstance(value, int | float) and not isinstance(value, bool))
        if not ok or not value > 0:
            _fail(owner, field, f"must be a positive {'int' if integer else 'number'}")


def _check_range(owner, field: str, low: float, high: float):
    value = getattr(owner, field)
    if not (isinstance(value, int | float) and low <= value <= high):
        _fail(owner, field, f"must be in [{low}, {high}]")


def _check_choice(owner, field: str, choices: tuple):
    if getattr(owner, field) not in choices:
        _fail(owner, field, f"must be one of {list(choices)}")


def _check_non_negative_int(owner, *fields: str):
    for field in fields:
        value = getattr(owner, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            _fail(owner, field, "must be a non-negative int")


def _check_optional_positive(owner, *fields: str, integer: bool = False):
    for field in fields:
        if getattr(owner, field) is not None:
            _check_positive(owner, field, integer=integer)


@dataclasses.dataclass(frozen=True)
class AlgoConfig:
    """The learning algorithm and its hyperparameters.

    Attributes:
      name: "impala" (V-trace actor-critic), "ppo" (GAE, clipped surrogate, several epochs)
        or "appo" (clipped surrogate with V-trace targets, for stale data).
      unroll_length: T, steps per unroll.
      batch_size: B, env columns (unrolls) per update.
      gamma: discount.
      gae_lambda: GAE lambda (ppo).
      vtrace_lambda: V-trace lambda (impala, appo).
      clip_rho_threshold, clip_c_threshold, clip_pg_rho_threshold: V-trace clipping.
      value_coef: weight of the value loss.
      entropy_coef: weight of the entropy bonus at the start of training.
      entropy_coef_final: if set, the entropy weight is annealed linearly to this value.
      value_loss: "squared" or "huber".
      optimizer: "adam" or "rmsprop".
      learning_rate: peak learning rate.
      lr_schedule: "constant", "linear" (to 0) or "cosine" (to 0).
      adam_eps: epsilon of Adam / RMSProp.
      max_grad_norm: global-norm gradient clipping (None: off).
      ppo_epochs: passes over each batch (ppo, appo).
      num_minibatches: minibatches per pass, split over batch columns (ppo, appo).
      ppo_clip: the surrogate's clip epsilon.
      dual_clip: optional dual-clip constant c > 1.
      value_clip: PPO value-clipping range (None: off).
      normalize_advantages: standardise advantages per batch (impala) or minibatch (ppo, appo).
      kl_coef: initial KL(behaviour || policy) penalty weight (0: off).
      adaptive_kl_target: if set, adapt the KL weight towards this KL (PPO's rule).
      target_kl: if set, stop an update's remaining minibatches once KL exceeds 1.5x this.
      max_nonfinite_updates: stop the run after this many non-finite updates in a row.
      value_normalization: "none", or "popart": the value head predicts returns normalised
        by running statistics of the value targets, and the head is rescaled whenever the
        statistics move so its unnormalised output is preserved (van Hasselt et al. 2016).
        For rewards whose scale is unknown or drifts (e.g. weighted multi-term rewards).
      popart_step_size: EMA step size of the PopArt target statistics.
    """

    name: Literal["impala", "ppo", "appo"] = "impala"
    unroll_length: int = 32
    batch_size: int = 32
    gamma: float = 0.99
    gae_lambda: float = 0.95
    vtrace_lambda: float = 1.0
    clip_rho_threshold: float = 1.0
    clip_c_threshold: float = 1.0
    clip_pg_rho_threshold: float = 1.0
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    entropy_coef_final: float | None = None
    value_loss: Literal["squared", "huber"] = "squared"
    optimizer: Literal["adam", "rmsprop"] = "adam"
    learning_rate: float = 6e-4
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    adam_eps: float = 1e-5
    max_grad_norm: float | None = 0.5
    ppo_epochs: int = 4
    num_minibatches: int = 4
    ppo_clip: float = 0.2
    dual_clip: float | None = None
    value_clip: float | None = None
    normalize_advantages: bool = True
    kl_coef: float = 0.0
    adaptive_kl_target: float | None = None
    target_kl: float | None = None
    max_nonfinite_updates: int = 10
    value_normalization: Literal["none", "popart"] = "none"
    popart_step_size: float = 3e-4

    def __post_init__(self):
        _check_choice(self, "name", ("impala", "ppo", "appo"))
        _check_positive(self, "unroll_length", "batch_size", "ppo_epochs", "num_minibatches",
                        "max_nonfinite_updates", integer=True)
        _check_range(self, "gamma", 0.0, 1.0)
        _check_range(self, "gae_lambda", 0.0, 1.0)
        _check_range(self, "vtrace_lambda", 0.0, 1.0)
        _check_positive(self, "clip_rho_threshold", "clip_c_threshold",
                        "clip_pg_rho_threshold", "learning_rate", "adam_eps", "ppo_clip")
        _check_range(self, "value_coef", 0.0, 1e6)
        _check_range(self, "entropy_coef", 0.0, 1e6)
        _check_range(self, "kl_coef", 0.0, 1e6)
        if self.entropy_coef_final is not None:
            _check_range(self, "entropy_coef_final", 0.0, 1e6)
        _check_choice(self, "value_loss", ("squared", "huber"))
        _check_choice(self, "optimizer", ("adam", "rmsprop"))
        _check_choice(self, "lr_schedule", ("constant", "linear", "cosine"))
        _check_choice(self, "value_normalization", ("none", "popart"))
        _check_range(self, "popart_step_size", 1e-8, 1.0)
        _check_optional_positive(self, "max_grad_norm", "value_clip", "adaptive_kl_target",
                                 "target_kl")
        if self.dual_clip is not None and not self.dual_clip > 1:
            _fail(self, "dual_clip", "must be > 1 (or null)")
        if self.adaptive_kl_target is not None and not self.kl_coef > 0:
            _fail(self, "kl_coef", "must be > 0 when adaptive_kl_target is set")
        if self.name != "impala" and self.batch_size % self.num_minibatches:
            _fail(self, "num_minibatches", f"must divide batch_size={self.batch_size}")


def frames_per_update(algo: AlgoConfig) -> int:
    """Env steps consumed by one update: T * B."""
    return algo.unroll_length * algo.batch_size


def num_updates(algo: AlgoConfig, total_env_steps: int) -> int:
    """Updates in a run of `total_env_steps` (at least one)."""
    return max(1, total_env_steps // frames_per_update(algo))


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The environment every actor steps.

    Attributes:
      id: any registered gymnasium id (`jaximpala/Driving-v0` and its presets are
        registered on `import jaximpala.envs`).
      num_envs: N, envs per vector env (per actor in the distributed runtime).
      kwargs: extra keyword arguments for `gymnasium.make_vec` (e.g. a driving `preset`
        or `config` overrides); passed through unchanged.
    """

    id: str = "jaximpala/Driving-v0"
    num_envs: int = 16
    kwargs: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            _fail(self, "id", "must be a non-empty gymnasium id")
        _check_positive(self, "num_envs", integer=True)
        if not isinstance(self.kwargs, dict):
            _fail(self, "kwargs", "must be a mapping")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """How the run's processes are laid out.

    Attributes:
      mode: "inline" (one process, no sockets) or "distributed" (actor processes streaming
        over ZeroMQ to the learner).
      num_actors: A, actor processes (distributed).
      host: interface the learner binds to; 127.0.0.1 keeps everything on this machine.
      trajectory_port, params_port: TCP ports of the learner (0: pick free ports).
      io_threads: ZeroMQ I/O threads of each learner process. One TCP stream's receive is
        about one thread's work, so with one thread the actors' trajectories queue behind
        each other (two actors, 11 MB trajectories on 2 cores: 0.13-0.15 of memcpy with one
        thread, 0.28-0.38 with two; `jaximpala bench pipeline --parts transport`).
      queue_size: actor unrolls the learner holds decoded in memory, at most (None: two
        batches' worth, see `queue_capacity`). When the learner is the slower side the
        queue stays full and every unroll in it is policy lag: 64 unrolls of 16 envs at
        batch_size 32 were ~30 updates of lag, and a two-learner CartPole run collapsed.
      prefetch_depth: batches put on the devices ahead of the update.
      max_policy_lag: drop trajectories whose acting version is older than this many
        updates (None: keep all).
      actor_timeout_s: an actor silent for this long after its first report (actors
        report every unroll, and send heartbeats while backpressure blocks them) is killed
        and restarted.
      actor_start_timeout_s: the same, from an actor's start to its first report (imports,
        env construction and compiling `act` take a while on a loaded machine).
      report_port: TCP port of the learner's actor-report socket (0: a free port).
      params_request_port: TCP port answering "current params" to new actors (0: free).
      restart_backoff_s: delay before restarting an actor that died; doubles with each
        failure in a row (up to `max_restart_backoff_s`) and resets once it reports.
      max_restart_backoff_s: the longest delay between restarts.
      max_failed_starts: stop the run (with an error) when an actor dies this many times in
        a row without ever reporting (e.g. an env id the actor cannot make).
      curve_keys_dir: directory made by `jaximpala keys` to encrypt and authenticate every
        socket with CurveZMQ (None: plaintext; keep `host` on 127.0.0.1 then).
      num_processes, process_id, coordinator_address: a multi-host run: `num_processes`
        learner processes join `jax.distributed` at `coordinator_address` ("host:port");
        gradients are averaged over all their devices. Learner `i` binds its trajectory
        socket at `trajectory_port + i`; process 0 alone publishes params (so the ports
        must be fixed, not 0). Each learner starts `num_actors` actors that feed every
        learner. The JAXIMPALA_* or SLURM_* environment variables may set them instead
        (see `runtime.with_process_env`).
      learner_hosts: the address actors use to reach learner `i` (default: `host`).
      peer_timeout_s: in a multi-host run, how long the learner processes wait for a silent
        peer (jax.distributed's heartbeat timeout) before all of them stop with an error,
        instead of waiting in the next update's collectives for ever. Keep it above the
        longest pause a healthy process can take (compilation, a checkpoint).
    """

    mode: Literal["inline", "distributed"] = "inline"
    num_actors: int = 2
    host: str = "127.0.0.1"
    trajectory_port: int = 0
    params_port: int = 0
    io_threads: int = 2
    queue_size: int | None = None
    prefetch_depth: int = 2
    max_policy_lag: int | None = None
    actor_timeout_s: float = 60.0
    actor_start_timeout_s: float = 300.0
    report_port: int = 0
    params_request_port: int = 0
    restart_backoff_s: float = 0.5
    max_restart_backoff_s: float = 30.0
    max_failed_starts: int = 5
    curve_keys_dir: str | None = None
    num_processes: int = 1
    process_id: int = 0
    coordinator_address: str | None = None
    learner_hosts: tuple[str, ...] = ()
    peer_timeout_s: int = 100

    def __post_init__(self):
        _check_choice(self, "mode", ("inline", "distributed"))
        _check_positive(self, "peer_timeout_s", integer=True)
        _check_positive(self, "num_actors", "io_threads", "prefetch_depth",
                        "max_failed_starts", integer=True)
        _check_optional_positive(self, "queue_size", integer=True)
        for field in ("trajectory_port", "params_port", "report_port", "params_request_port"):
            _check_range(self, field, 0, 65535)
        _check_optional_positive(self, "max_policy_lag")
        _check_positive(self, "actor_timeout_s", "actor_start_timeout_s", "restart_backoff_s",
                        "max_restart_backoff_s")
        if self.max_restart_backoff_s < self.restart_backoff_s:
            _fail(self, "max_restart_backoff_s", "must be >= restart_backoff_s")
        if isinstance(self.learner_hosts, list):  # as YAML gives it
            object.__setattr__(self, "learner_hosts", tuple(self.learner_hosts))
        _check_positive(self, "num_processes", integer=True)
        _check_range(self, "process_id", 0, self.num_processes - 1)
        if self.num_processes > 1:
            if not self.coordinator_address:
                _fail(self, "coordinator_address", "must be host:port when num_processes > 1")
            for field in ("trajectory_port", "params_port", "params_request_port"):
                if getattr(self, field) == 0:
                    _fail(self, field, "must be a fixed port when num_processes > 1")
        if self.learner_hosts and len(self.learner_hosts) != self.num_processes:
            _fail(self, "learner_hosts", f"must name {self.num_processes} hosts (or none)")
        if self.curve_keys_dir is not None and not (
                isinstance(self.curve_keys_dir, str) and self.curve_keys_dir):
            _fail(self, "curve_keys_dir", "must be a directory path (or null)")


def queue_capacity(runtime: RuntimeConfig, algo: AlgoConfig, num_envs: int) -> int:
    """Actor unrolls (each of `num_envs` envs) the learner's decoded queue holds:
    `runtime.queue_size`, or enough for two batches. With `prefetch_depth` batches on the
    devices as well, the update never waits on a burst, while a learner slower than its
    actors sees data at most a few updates old (actors then wait on ZeroMQ backpressure)."""
    if runtime.queue_size is not None:
        return runtime.queue_size
    return 2 * (algo.batch_size // num_envs)  # a batch is whole unrolls (Batcher checks)


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """Where metrics go: always a local `metrics.jsonl` in the run directory, plus W&B.

    Attributes:
      wandb_mode: "offline" (default: no account needed; `wandb sync` uploads later),
        "online" (needs `wandb login`) or "disabled". W&B is optional: without the
        `wandb` package installed, runs log locally only and say so once.
      project, entity, group, name: W&B run placement; `name` defaults to the run
        directory's name, `group` to none (sweeps set it).
      tags: W&B tags.
      log_every: updates between metric records (every record goes to both sinks).
      progress: show the live progress display on the console.
    """

    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "jaximpala"
    entity: str | None = None
    group: str | None = None
    name: str | None = None
    tags: tuple[str, ...] = ()
    log_every: int = 1
    progress: bool = True

    def __post_init__(self):
        _check_choice(self, "wandb_mode", ("offline", "online", "disabled"))
        _check_positive(self, "log_every", integer=True)


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints of the whole training state (see `jaximpala.checkpoint`).

    Attributes:
      every_updates: save every this many updates (0: only at the end of the run and on
        SIGTERM / Ctrl-C).
      keep: how many of the newest checkpoints to keep.
    """

    every_updates: int = 100
    keep: int = 3

    def __post_init__(self):
        _check_non_negative_int(self, "every_updates")
        _check_positive(self, "keep", integer=True)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluation on held-out scenarios (see `jaximpala.evaluation`).

    Episode j is the first episode of an env reset with seed `seed + j`; training resets
    its envs with the run's `seed + i` for small i, so the default offset keeps the two
    apart.

    Attributes:
      episodes: episodes per evaluation (0: no evaluation at the end of training).
      seed: first scenario seed.
      num_envs: envs stepped together while evaluating.
      every_updates: also evaluate every this many updates (0: only at the end).
      video_steps: at the end of training, render this many steps of the first evaluation
        episode to `episode-<update>-seed<seed>.gif` in the run directory and W&B (0: none;
        needs an env with `render_mode="rgb_array"`).
      greedy: act with the policy's mode instead of sampling from it. Off by default: the
        sampled policy is the one training optimises, and a mode can be a fixed point that
        training never sees (a driving agent stopped in neutral stays there forever when
        the observation no longer changes; see experiments/README.md).
    """

    episodes: int = 32
    seed: int = 1_000_000
    num_envs: int = 16
    every_updates: int = 0
    video_steps: int = 0
    greedy: bool = False

    def __post_init__(self):
        _check_non_negative_int(self, "episodes", "seed", "every_updates", "video_steps")
        _check_positive(self, "num_envs", integer=True)


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """A behaviour-cloning warm start before RL (see `jaximpala.pretrain`).

    The driving env's scripted baseline driver is recorded on fresh envs, with Gaussian
    noise added to the continuous controls it sends (the labels stay its clean commands, so
    the agent also sees how the driver recovers from small errors: Laskey et al. 2017,
    "DART", https://arxiv.org/abs/1703.09327). The policy, log-std included, is fitted to
    those labels by maximum likelihood, the value head to the demonstrations' discounted
    returns, and RL then starts from those params with a fresh optimizer. Only a fresh run
    warm-starts (`--resume` does not); a SIGTERM during the warm start ends it where it is
    and the run stops with a checkpoint of those params at update 0.

    Attributes:
      demo_env_steps: env steps recorded per round (0: no warm start, RL from scratch).
      dagger_rounds: rounds after the first in which the clone drives and the baseline
        labels what it sees (DAgger, see `pretrain.warm_start`); each records
        `demo_env_steps` more and refits on all of it.
      num_envs: envs stepped together while recording (the columns of each BC batch).
      epochs: passes over the demonstrations.
      learning_rate: Adam's step size for the warm start (its own optimizer; RL starts with
        fresh optimizer state).
      action_noise: std of the noise on the executed continuous controls, as a fraction of
        each control's half range.
      value_coef: weight of the value loss against the policy's negative log-likelihood.
      bc_coef: weight of the demonstrations' negative log-likelihood added to the RL loss at
        the start of RL (see `jaximpala.imitation`; with `bc_coef_end` also 0, the default,
        there is no such term). The demonstrations are kept in the run directory
        (`demonstrations.msgpack`) for `--resume`.
      bc_coef_end: the term's weight at the end of the run (linear from `bc_coef`).
      bc_columns: demonstration windows of `algo.unroll_length` steps scored per optimizer
        step.
      bc_burn_in: labels at the start of each window left out of the term while the
        recurrent state fills from zero (an LSTM core only).
    """

    demo_env_steps: int = 0
    dagger_rounds: int = 0
    num_envs: int = 32
    epochs: int = 10
    learning_rate: float = 1e-3
    action_noise: float = 0.1
    value_coef: float = 0.5
    bc_coef: float = 0.0
    bc_coef_end: float = 0.0
    bc_columns: int = 8
    bc_burn_in: int = 8

    def __post_init__(self):
        _check_non_negative_int(self, "demo_env_steps", "dagger_rounds", "bc_burn_in")
        _check_positive(self, "num_envs", "epochs", "bc_columns", integer=True)
        _check_positive(self, "learning_rate")
        _check_range(self, "action_noise", 0.0, 1.0)
        _check_range(self, "value_coef", 0.0, 100.0)
        _check_range(self, "bc_coef", 0.0, 100.0)
        _check_range(self, "bc_coef_end", 0.0, 100.0)

    @property
    def imitation(self) -> bool:
        """Whether RL keeps an imitation term on the demonstrations."""
        return self.bc_coef > 0 or self.bc_coef_end > 0


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One training run: everything `jaximpala train` needs, saved as `config.yaml`.

    Attributes:
      seed: seeds the learner's and the actors' keys and the envs' first resets.
      total_env_steps: env steps to train for (rounded down to whole updates of T * B).
      run_dir: where the run's files go; null: `runs/<env>-<algo>-<time>`.
      env, algo, network, runtime, logging, checkpoint, eval, pretrain: the sections
        documented on their classes.
    """

    seed: int = 0
    total_env_steps: int = 1_000_000
    run_dir: str | None = None
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    algo: AlgoConfig = dataclasses.field(default_factory=AlgoConfig)
    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    pretrain: PretrainConfig = dataclasses.field(default_factory=PretrainConfig)

    def __post_init__(self):
        _check_non_negative_int(self, "seed")
        _check_positive(self, "total_env_steps", integer=True)
        if self.runtime.mode == "inline" and self.algo.batch_size % self.env.num_envs:
            raise ValueError(f"RunConfig.env.num_envs: must divide algo.batch_size="
                             f"{self.algo.batch_size} (runtime.mode=inline collects whole "
                             f"vector envs), got {self.env.num_envs}")
        self._check_pretrain()

    def _check_pretrain(self):
        pretrain = self.pretrain
        if pretrain.imitation and not pretrain.demo_env_steps:
            raise ValueError("RunConfig.pretrain.bc_coef: the imitation term scores the warm "
                             "start's demonstrations; set pretrain.demo_env_steps > 0")
        if not pretrain.demo_env_steps:
            return
        if pretrain.imitation and pretrain.bc_burn_in >= self.algo.unroll_length:
            raise ValueError(f"RunConfig.pretrain.bc_burn_in: {pretrain.bc_burn_in} must be "
                             f"shorter than a window of algo.unroll_length="
                             f"{self.algo.unroll_length}")
        if self.env.id not in DRIVING_ENV_IDS:
            raise ValueError(f"RunConfig.pretrain.demo_env_steps: the warm start imitates the "
                             f"driving env's scripted baseline, which {self.env.id!r} does "
                             f"not have (set it to 0)")
        if pretrain.demo_env_steps // pretrain.num_envs < self.algo.unroll_length:
            raise ValueError(
                f"RunConfig.pretrain.demo_env_steps: {pretrain.demo_env_steps} steps over "
                f"pretrain.num_envs={pretrain.num_envs} envs are fewer per env than one "
                f"window of algo.unroll_length={self.algo.unroll_length}")


# ---------------------------------------------------------------------------------------
# Loading: YAML + dotted overrides -> nested frozen dataclasses, typed by their annotations.


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the dotted key."""


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                cls: type = RunConfig):
    """Reads a YAML config, applies `key.path=value` overrides and builds `cls`.

    Override values are parsed as YAML (`algo.name=ppo`, `network.torso_sizes=[64,64]`,
    `algo.max_grad_norm=null`). Missing keys keep the dataclass defaults.

    Raises:
      ConfigError: naming the full dotted key for an unknown key (with the allowed keys),
        a value of the wrong type or an impossible value (with the allowed values).
    """
    data = {}
    if path is not None:
        text = pathlib.Path(path).read_text()
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
    for override in overrides:
        apply_override(data, override)
    return from_dict(cls, data)


def apply_override(data: dict, override: str) -> None:
    """Sets `data[a][b][c] = yaml(value)` in place for the override `a.b.c=value`."""
    key, sep, raw = override.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {override!r} must look like key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    *parents, last = key.split(".")
    node = data
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parents[:depth + 1])} is a value, not a section, "
                              f"so {key} cannot be set")
        node = child
    node[last] = value


def from_dict(cls: type, data: Mapping, prefix: str = ""):
    """Builds the dataclass `cls` from a mapping, coercing values to the field types."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: must be a mapping of "
                          f"{sorted(f.name for f in dataclasses.fields(cls))}, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(f"{prefix}{key}: unknown key{hint}; allowed keys"
                              f"{' of ' + prefix.rstrip('.') if prefix else ''}: {names}")
        kwargs[key] = _coerce(hints[key], value, prefix + key)
    try:
        return cls(**kwargs)
    except ValueError as error:
        if isinstance(error, ConfigError):
            raise
        # Field checks name `ClassName.field`; say it as the dotted key the user typed.
        message = re.sub(rf"^{cls.__name__}\.", prefix, str(error))
        raise ConfigError(message if message != str(error) else
                          f"{prefix.rstrip('.') or cls.__name__}: {error}") from None


def _coerce(tp, value, key: str):
    """`value` as type `tp` (dataclass, Literal, Optional, tuple, dict, int, float...)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{key}: {value!r} matches none of {tp}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: must be a list of {len(args)} values, got {value!r}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in pairs)
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value
    if tp in (int, float):
        return _coerce_number(tp, value, key)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        return value
    if tp is typing.Any:
        return value
    raise ConfigError(f"{key}: fields of type {tp} cannot be set from a config")


def _coerce_number(tp: type, value, key: str):
    # PyYAML reads `3e-4` and `1e6` as strings (YAML 1.1), so numeric strings are accepted.
    number = value
    if isinstance(value, str):
        try:
            number = float(value.replace("_", ""))
        except ValueError:
            number = value
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ConfigError(f"{key}: must be {'an int' if tp is int else 'a number'}, "
                          f"got {value!r}")
    if tp is int:
        if not float(number).is_integer():
            raise ConfigError(f"{key}: must be an int, got {value!r}")
        return int(number)
    return float(number)


def to_dict(config) -> dict:
    """A dataclass config as plain YAML-able data (tuples become lists)."""
    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def dump_config(config) -> str:
    """The resolved config as YAML; `load_config` of it gives back an equal config."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=False)
