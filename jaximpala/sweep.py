"""Launching grids of runs (seeds x hyperparameters): the shared core of `experiments/*.py`.

Every run is one `jaximpala train` process with its own run directory
`<root>/<sweep>/<label>-s<seed>`, W&B group `<sweep>` and tag `sweep`. Runs go locally, at
most `parallel` at a time (each process's output in `<run_dir>.log`), or are printed one
command per line for a cluster scheduler (`--print`). Launching a sweep again skips finished
runs and resumes interrupted ones. At the end `jaximpala plot` summarises the sweep with the
mean and a confidence band across seeds.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def grid(axes: dict[str, Sequence]) -> list[dict]:
    """Every combination of the axes' values, e.g. {lr: [1, 2], ent: [3]} -> 2 points."""
    names = list(axes)
    return [dict(zip(names, values, strict=True))
            for values in itertools.product(*(axes[n] for n in names))]


def _label(point: dict) -> str:
    return "-".join(f"{key.split('.')[-1]}={value}" for key, value in point.items()) or "base"


def sweep_commands(name: str, config: str, axes: dict[str, Sequence], seeds: Sequence[int],
                   overrides: Sequence[str] = (), root: str = "runs/sweeps",
                   executable: Sequence[str] = ("jaximpala",)) -> list[list[str]]:
    """The `jaximpala train` command of every (grid point, seed), seeds innermost."""
    commands = []
    for point in grid(axes):
        for seed in seeds:
            run_dir = Path(root) / name / f"{_label(point)}-s{seed}"
            commands.append([
                *executable, "train", "--config", config, f"run_dir={run_dir}", f"seed={seed}",
                f"logging.group={name}", "logging.tags=[sweep]", "logging.progress=false",
                *overrides, *(f"{key}={value}" for key, value in point.items())])
    return commands


def _run_dir(command: list[str]) -> Path:
    if "--resume" in command:
        return Path(command[command.index("--resume") + 1])
    return Path(next(a for a in command if a.startswith("run_dir=")).split("=", 1)[1])


def resumable(command: list[str]) -> list[str] | None:
    """`command` for a run not started yet; `train --resume` for one that was interrupted
    (it has checkpoints but no summary); None for one that finished."""
    run_dir = _run_dir(command)
    if (run_dir / "summary.json").exists():
        return None
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        train = command.index("train")
        return [*command[:train + 1], "--resume", str(run_dir)]
    return command


def run_parallel(commands: list[list[str]], parallel: int, poll_s: float = 1.0) -> list[int]:
    """Runs the commands, at most `parallel` at once; returns their exit codes in order."""
    pending = list(enumerate(commands))
    running: dict[int, tuple[subprocess.Popen, object]] = {}
    codes = [0] * len(commands)
    while pending or running:
        while pending and len(running) < parallel:
            index, command = pending.pop(0)
            log_path = _run_dir(command).with_suffix(".log")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(log_path, "w")
            running[index] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT),
                              log)
            print(f"[{index + 1}/{len(commands)}] started {_run_dir(command)}", flush=True)
        for index, (process, log) in list(running.items()):
            if process.poll() is not None:
                log.close()
                codes[index] = process.returncode
                del running[index]
                print(f"[{index + 1}/{len(commands)}] exit {process.returncode}: "
                      f"{_run_dir(commands[index])}", flush=True)
        time.sleep(poll_s)
    return codes


def main(argv: list[str] | None, *, name: str, config: str, axes: dict[str, Sequence],
         description: str, seeds: int = 3) -> int:
    """The command line shared by the sweep scripts in `experiments/`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=config, help="base config (default: %(default)s)")
    parser.add_argument("--name", default=name, help="sweep name: W&B group and folder")
    parser.add_argument("--seeds", type=int, default=seeds, help="seeds per grid point")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once, locally")
    parser.add_argument("--root", default="runs/sweeps", help="folder of the sweep folders")
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="print the commands (one per line) instead of running them")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value",
                        help="applied to every run, e.g. total_env_steps=200000")
    args = parser.parse_args(argv)
    # Printed for a cluster: the installed `jaximpala` script; run here: this interpreter.
    executable = ("jaximpala",) if args.print_only else (sys.executable, "-m", "jaximpala")
    commands = sweep_commands(args.name, args.config, axes, range(args.seeds),
                              args.overrides, args.root, executable)
    if args.print_only:
        print("\n".join(shlex.join(c) for c in commands))
        return 0
    # Launching a sweep again finishes it: done runs are skipped, interrupted ones resumed.
    todo = [c for c in map(resumable, commands) if c is not None]
    if len(todo) < len(commands):
        print(f"{len(commands) - len(todo)} of {len(commands)} runs already finished")
    codes = run_parallel(todo, args.parallel)
    sweep_dir = Path(args.root) / args.name
    plot = [sys.executable, "-m", "jaximpala", "plot", str(sweep_dir), "--out",
            str(sweep_dir / "curves.png")]
    subprocess.run(plot, check=False)
    failed = sum(code != 0 for code in codes)
    print(f"{len(codes) - failed}/{len(codes)} runs finished; curves: "
          f"{sweep_dir / 'curves.png'}")
    return 1 if failed else 0
