"""Typed, frozen, validated configuration.

Every config is a frozen dataclass that validates itself on construction and names the
offending field in its error. Derived sizes (e.g. updates per run) are computed by
functions from the config, never written back into it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal


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


def _check_optional_positive(owner, *fields: str):
    for field in fields:
        if getattr(owner, field) is not None:
            _check_positive(owner, field)


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
      queue_size: trajectories the learner holds decoded in memory, at most.
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
    """

    mode: Literal["inline", "distributed"] = "inline"
    num_actors: int = 2
    host: str = "127.0.0.1"
    trajectory_port: int = 0
    params_port: int = 0
    queue_size: int = 64
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

    def __post_init__(self):
        _check_choice(self, "mode", ("inline", "distributed"))
        _check_positive(self, "num_actors", "queue_size", "prefetch_depth",
                        "max_failed_starts", integer=True)
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
