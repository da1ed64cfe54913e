"""Train an agent from a YAML config: `jaximpala train [--config FILE] [key.path=value ...]`.

Prints a live progress display on stderr and, at the end, a one-line JSON summary and the
run directory on stdout. `--resume RUN_DIR` continues a run from its newest checkpoint
(bit for bit on CPU with `runtime.mode=inline`); overrides on resume change the run from
there on (e.g. a longer `total_env_steps`, a reward weight: changed env settings start fresh
envs rather than restoring the saved ones). SIGTERM or Ctrl-C stops after the update
in progress and writes a checkpoint.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import importlib
import json
import pathlib
import secrets
import signal
import sys
import threading
import time

from jaximpala.config import ConfigError, RunConfig, frames_per_update, load_config, num_updates
from jaximpala.config import to_dict as config_to_dict
from jaximpala.runs import SOURCE_ROOT, default_run_dir, prepare_run_dir, read_run_config

CONFIG_DIR = SOURCE_ROOT / "configs"
DEFAULT_CONFIG = "driving_lane_assist"
CHECKPOINT_DIR = "checkpoints"
DEMONSTRATIONS_FILE = "demonstrations.msgpack"  # the imitation term's windows (pretrain.bc_coef)


def add_arguments(parser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help=f"YAML config, or the name of one in configs/ "
                             f"(default: {DEFAULT_CONFIG})")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue this run from its newest checkpoint")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value",
                        help="config overrides, e.g. algo.learning_rate=3e-4 seed=1")


def config_path(name: str) -> pathlib.Path:
    """A config file given as a path or as a name in `configs/` (`debug`, `debug.yaml`)."""
    for candidate in (pathlib.Path(name), CONFIG_DIR / name, CONFIG_DIR / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"--config {name}: no such file, and not one of the configs in "
                      f"{CONFIG_DIR}: {known}")


def run(args) -> int:
    stop = threading.Event()
    with stop_on_signals(stop):  # from here on a SIGTERM ends the run with a checkpoint
        return _run(args, stop)


def _run(args, stop: threading.Event) -> int:
    try:
        if args.resume:
            if args.config:
                raise ConfigError("--resume takes the run's own config.yaml; pass changes as "
                                  "key.path=value overrides instead of --config")
            config = read_run_config(args.resume, args.overrides)
        else:
            config = load_config(config_path(args.config or DEFAULT_CONFIG), args.overrides)
        check_runtime(config)
    except (ConfigError, FileNotFoundError) as error:
        print(f"jaximpala train: error: {error}", file=sys.stderr)
        return 2
    try:
        summary = train(config, resume_dir=args.resume, argv=getattr(args, "argv", sys.argv),
                        stop=stop)
    except (FileExistsError, FileNotFoundError) as error:
        print(f"jaximpala train: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    print(summary["run_dir"])
    return 1 if "error" in summary else 0


def check_runtime(config: RunConfig) -> None:
    """Fails before anything starts if the configured runtime cannot run or the driving
    env's kwargs are wrong."""
    check_driving_kwargs(config)
    if config.runtime.mode == "distributed":
        try:
            importlib.import_module("jaximpala.runtime")
        except ModuleNotFoundError as error:
            if error.name != "jaximpala.runtime":
                raise
            raise ConfigError("runtime.mode=distributed: this installation has no "
                              "jaximpala.runtime module (the distributed runtime); use "
                              "runtime.mode=inline") from None


def check_driving_kwargs(config: RunConfig) -> None:
    """Raises ConfigError naming the bad `env.kwargs` of a driving env id before a run
    directory is made (other envs check their kwargs when they are made)."""
    from jaximpala.envs.driving.env import config_from
    from jaximpala.envs.driving.registration import ENV_IDS

    if config.env.id not in ENV_IDS:
        return
    kwargs = dict(config.env.kwargs)
    kwargs.pop("render_mode", None)  # the env's own argument, checked when it is made
    try:
        config_from(kwargs.pop("config", None), kwargs.pop("preset", ENV_IDS[config.env.id]),
                    kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"env.kwargs: {error}") from None


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event):
    """SIGTERM and the first Ctrl-C set `stop` (the run checkpoints and ends); a second
    Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        print(f"\n{signal.Signals(signum).name}: stopping after this update and writing a "
              "checkpoint (Ctrl-C again to abort)", file=sys.stderr)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class ProgressDisplay:
    """The rich progress bar: env steps, frames/s, recent return and success rate, ETA."""

    WINDOW = 20  # updates over which the recent return / success rate are averaged

    def __init__(self, total_steps: int, start_steps: int, enabled: bool):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.completed:,}/{task.total:,} steps"),
            TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
            console=Console(stderr=True), disable=not enabled)
        self._task = self._progress.add_task("train", total=total_steps,
                                             completed=start_steps, stats="compiling...")
        self._start_steps, self._start_time = start_steps, time.perf_counter()
        self._recent = collections.deque(maxlen=self.WINDOW)

    def __enter__(self):
        self._progress.start()
        return self

    def __exit__(self, *exc):
        self._progress.stop()

    def update(self, metrics: dict) -> None:
        if metrics.get("episodes"):
            self._recent.append((metrics["episodes"], metrics["episode_return"],
                                 metrics.get("success_rate")))
        steps = metrics["env_steps"]
        stats = f"{self.frames_per_second(steps):,.0f} frames/s"
        if self._recent:
            stats += f"  return {self.recent_return():.2f}"
            success = self.recent_success()
            if success is not None:
                stats += f"  success {success:.0%}"
        self._progress.update(self._task, completed=steps, stats=stats)

    def frames_per_second(self, steps: int) -> float:
        return (steps - self._start_steps) / max(time.perf_counter() - self._start_time, 1e-9)

    def recent_return(self) -> float | None:
        count = sum(n for n, _, _ in self._recent)
        return sum(n * r for n, r, _ in self._recent) / count if count else None

    def recent_success(self) -> float | None:
        known = [(n, s) for n, _, s in self._recent if s is not None]
        count = sum(n for n, _ in known)
        return sum(n * s for n, s in known) / count if count else None


def _wandb_run_id(run_dir: pathlib.Path) -> str:
    """The run's W&B id, made once and kept in the run directory so a resume continues it."""
    path = run_dir / "wandb_id.txt"
    if not path.exists():
        path.write_text(secrets.token_hex(6) + "\n")
    return path.read_text().strip()


def train(config: RunConfig, *, resume_dir: str | pathlib.Path | None = None,
          argv: list[str] = (), stop: threading.Event | None = None) -> dict:
    """Runs (or resumes) a training run and returns its summary (also in `summary.json`).

    Raises:
      FileExistsError: a fresh run's directory already has checkpoints.
      FileNotFoundError: `resume_dir` has no checkpoint.
    """
    # Heavy imports here, so that `jaximpala train --help` and config errors are instant.
    from jaximpala.checkpoint import Checkpointer
    from jaximpala.inline import agent_for_env, run_keys, train_inline
    from jaximpala.learner import Learner, NonFiniteError
    from jaximpala.logger import truncate_metrics

    check_runtime(config)
    _quiet_absl()
    run_dir = pathlib.Path(resume_dir or config.run_dir or default_run_dir(config))
    if resume_dir is None and (run_dir / CHECKPOINT_DIR).exists() and any(
            (run_dir / CHECKPOINT_DIR).iterdir()):
        raise FileExistsError(f"{run_dir} already holds a run's checkpoints; continue it "
                              f"with --resume {run_dir} or choose another run_dir")
    env_changed, saved_windows = False, None
    if resume_dir is not None:
        config = dataclasses.replace(config, run_dir=str(run_dir))
        env_changed = read_run_config(run_dir).env != config.env  # before it is overwritten
        if config.pretrain.imitation:  # before anything in the run directory changes
            from jaximpala.imitation import load_windows

            saved_windows = load_windows(run_dir / DEMONSTRATIONS_FILE)
    prepare_run_dir(run_dir, config, list(argv))
    process = _join_learner_group(config)  # before the first JAX computation
    # Every learner of a multi-host run holds the same params; process 0 alone evaluates and
    # writes the run's files (as it alone writes the checkpoints), so that learners sharing
    # a run_dir do not write over each other.
    primary = process == 0
    algo, updates = config.algo, num_updates(config.algo, config.total_env_steps)
    agent = agent_for_env(config.env.id, config.env.kwargs, config.network)
    learner_key, _ = run_keys(config.seed)
    checkpointer = Checkpointer(run_dir / CHECKPOINT_DIR, keep=config.checkpoint.keep)
    state = collector_state = None
    if resume_dir is not None:
        restored = checkpointer.restore(initial_train_state(config, agent))
        state, collector_state = restored.train_state, restored.collector_state
        if primary:
            truncate_metrics(run_dir, restored.step)
        if env_changed and collector_state is not None:
            # The saved envs carry the old settings (e.g. reward weights): restoring them
            # would silently ignore the override.
            print("note: the env config differs from the checkpoint's; the envs start fresh "
                  "with the new settings", file=sys.stderr)
            collector_state = None
        elif collector_state is None and config.runtime.mode == "inline":
            print("note: the checkpoint has no collector state (distributed run); the envs "
                  "start fresh", file=sys.stderr)
    stop = stop or threading.Event()
    logger = _metrics_logger(config, run_dir, process)
    pretrain_stats = imitation = None
    try:
        if resume_dir is None and config.pretrain.demo_env_steps:
            state, pretrain_stats, demos = _warm_start(config, agent, learner_key, stop,
                                                       run_dir, logger if primary else None)
            if config.pretrain.imitation and demos is not None:
                imitation = _imitation(config, _demo_windows(config, agent, demos,
                                                             run_dir if primary else None))
        elif saved_windows is not None:
            imitation = _imitation(config, saved_windows)
    except BaseException:
        logger.close()
        checkpointer.close()
        raise
    learner = Learner(agent, algo, num_updates=updates, key=learner_key, state=state,
                      imitation=imitation)
    start_update, tick = learner.version, time.perf_counter()

    def save(learner, collector_state=None):
        checkpointer.save(learner.version, learner.host_state(), collector_state, {
            "update": learner.version, "env_steps": learner.version * frames_per_update(algo)})

    display = ProgressDisplay(updates * frames_per_update(algo),
                              start_update * frames_per_update(algo), config.logging.progress)
    every = config.checkpoint.every_updates

    def on_update(metrics: dict) -> None:
        display.update(metrics)
        update = metrics["update"]
        if primary and config.eval.every_updates and update % config.eval.every_updates == 0:
            metrics = {**metrics, **_prefixed("eval/", _evaluate(config, agent,
                                                                 learner.params))}
        if update % config.logging.log_every == 0 or "eval/episodes" in metrics:
            logger.log({**metrics, "frames_per_second": display.frames_per_second(
                metrics["env_steps"])})
        if config.runtime.mode == "distributed" and every and update % every == 0:
            save(learner)

    summary = {"run_dir": str(run_dir)}
    if pretrain_stats is not None:
        summary["pretrain"] = _pretrain_summary(pretrain_stats)
    try:
        with stop_on_signals(stop), display:
            if config.runtime.mode == "inline":
                result = train_inline(
                    config.env.id, algo=algo, num_envs=config.env.num_envs,
                    total_env_steps=config.total_env_steps, seed=config.seed,
                    network=config.network, env_kwargs=config.env.kwargs,
                    on_update=on_update, learner=learner, stop=stop,
                    collector_state=collector_state, checkpoint_every=every,
                    on_checkpoint=save)
            else:
                runtime = importlib.import_module("jaximpala.runtime")
                result = runtime.train_distributed(
                    config.env, algo, config.runtime, total_env_steps=config.total_env_steps,
                    seed=config.seed, network=config.network, learner=learner,
                    on_update=on_update, stop=stop)
        train_seconds = time.perf_counter() - tick
        save(learner, result.collector_state)
        summary.update(frames_per_second=round(
            (learner.version - start_update) * frames_per_update(algo) / train_seconds, 1))
        summary.update(updates=learner.version,
                       env_steps=learner.version * frames_per_update(algo),
                       stopped=result.stopped)
        if primary and config.eval.episodes and not result.stopped:
            summary["eval"] = _evaluate(config, agent, learner.params)
            logger.log({"update": learner.version, **_prefixed("eval/", summary["eval"])})
        if primary and config.eval.video_steps and not result.stopped:
            from jaximpala.render_run import write_episode_gif

            summary["video"] = str(write_episode_gif(
                config, agent, learner.params, step=learner.version, seed=config.eval.seed,
                max_steps=config.eval.video_steps, every=2, run_dir=run_dir)[0])
            logger.log_file("eval/video", summary["video"], learner.version)
    except NonFiniteError as error:
        # The newest checkpoint is the last one written before the non-finite streak ended
        # the run; nothing is written over it.
        summary.update(updates=learner.version, error=f"NonFiniteError: {error}",
                       last_checkpoint=checkpointer.latest_step())
    finally:
        logger.close()
        checkpointer.close()
    # frames_per_second covers the training loop (compilation included), not evaluation.
    summary.update(wall_seconds=round(time.perf_counter() - tick, 2),
                   train_return=display.recent_return(),
                   train_success_rate=display.recent_success())
    if primary:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _warm_start(config: RunConfig, agent, learner_key, stop: threading.Event,
                run_dir: pathlib.Path, logger):
    """The run's fresh train state after `pretrain`'s behaviour cloning; its stats go to
    `pretrain.json` in the run directory and, as update 0, to the metrics (`logger`)."""
    import jax

    from jaximpala.pretrain import warm_start

    def on_epoch(metrics: dict) -> None:
        print("pretrain: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()),
              file=sys.stderr)

    state, stats, demos = warm_start(config, agent, initial_train_state(config, agent),
                                     key=learner_key, on_epoch=on_epoch,
                                     should_stop=stop.is_set)
    if jax.process_count() > 1:
        # Every learner process fits the same demonstrations; process 0's result is the one
        # all of them start from, so that replicas cannot differ by a rounding.
        from jax.experimental import multihost_utils

        params, value_norm = multihost_utils.broadcast_one_to_all(
            (state.params, state.value_norm))
        state = state.replace(params=params, value_norm=value_norm)
    if logger is not None:
        (run_dir / "pretrain.json").write_text(json.dumps(stats._asdict(), indent=1) + "\n")
        logger.log({"update": 0, "env_steps": 0,
                    **_prefixed("pretrain/", _pretrain_summary(stats))})
    return state, stats, demos


def _demo_windows(config: RunConfig, agent, demos, run_dir: pathlib.Path | None):
    """A fresh run's demonstrations cut into the imitation term's windows, saved in
    `run_dir` (when given) for `--resume`."""
    from jaximpala.imitation import save_windows
    from jaximpala.pretrain import imitation_windows

    burn_in = config.pretrain.bc_burn_in if config.network.use_lstm else 0
    windows = imitation_windows(demos, agent, length=config.algo.unroll_length,
                                burn_in=burn_in)
    if run_dir is not None:
        save_windows(run_dir / DEMONSTRATIONS_FILE, windows)
    return windows


def _imitation(config: RunConfig, windows):
    """The run's imitation term (`pretrain.bc_coef`) on `windows`."""
    from jaximpala.imitation import Imitation

    pretrain = config.pretrain
    return Imitation(windows=windows, coef=pretrain.bc_coef, coef_end=pretrain.bc_coef_end,
                     columns=pretrain.bc_columns)


def _pretrain_summary(stats) -> dict:
    """The warm start's figures for the summary: demonstrations, final fit, time."""
    final = stats.history[-1] if stats.history else {}
    return {"demo_env_steps": stats.demo_env_steps, "seconds": round(stats.seconds, 2),
            **{f"demo_{k}": v for k, v in stats.demo_episodes.items()
               if k in ("success_rate", "collision_rate", "episode_return")},
            **final}


def _join_learner_group(config: RunConfig) -> int:
    """This learner's process index: 0 unless a multi-host run, which it joins here."""
    if config.runtime.mode != "distributed":
        return 0
    import jax

    runtime = importlib.import_module("jaximpala.runtime")
    runtime.join_distributed(runtime.with_process_env(config.runtime))
    return jax.process_index()


def _metrics_logger(config: RunConfig, run_dir: pathlib.Path, process: int):
    """Process 0 logs the run (`metrics.jsonl`, W&B); another learner process of a multi-host
    run keeps its own pipeline metrics in `metrics.process<i>.jsonl`, without W&B."""
    from jaximpala.logger import MetricsLogger

    if process == 0:
        return MetricsLogger(run_dir, config.logging, config_to_dict(config),
                             run_id=_wandb_run_id(run_dir))
    return MetricsLogger(run_dir, dataclasses.replace(config.logging, wandb_mode="disabled"),
                         filename=f"metrics.process{process}.jsonl")


def initial_train_state(config: RunConfig, agent):
    """The fresh `TrainState` of a run (also the structure its checkpoints restore into)."""
    from jaximpala.inline import run_keys
    from jaximpala.learner import init_train_state, make_optimizer

    updates = num_updates(config.algo, config.total_env_steps)
    return init_train_state(agent, make_optimizer(config.algo, updates)[0], config.algo,
                            run_keys(config.seed)[0])


def _quiet_absl() -> None:
    """Orbax logs every checkpoint step through absl at WARNING; keep the console for the
    progress display and real errors."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)


def _prefixed(prefix: str, metrics: dict) -> dict:
    return {prefix + k: v for k, v in metrics.items()}


def _evaluate(config: RunConfig, agent, params) -> dict:
    """Evaluation (`config.eval.greedy`: the mode, else samples) on held-out scenario seeds."""
    import jax

    from jaximpala.evaluation import evaluate_agent

    return evaluate_agent(config.env.id, config.env.kwargs, agent, params,
                          episodes=config.eval.episodes, seed=config.eval.seed,
                          num_envs=config.eval.num_envs, greedy=config.eval.greedy,
                          key=jax.random.key(config.eval.seed))
