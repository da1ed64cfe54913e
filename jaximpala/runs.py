"""Run directories: where a run's files live and what makes the run reproducible.

    runs/<name>/
      config.yaml     the resolved config (`jaximpala train --config runs/<name>/config.yaml`
                      reruns it)
      command.txt     every command line that trained in this directory (one per resume)
      git.json        commit, branch, dirty flag and untracked files of the source checkout
      git.diff        `git diff HEAD` at launch (uncommitted changes), if any
      versions.json   Python, platform and every installed package's version
      metrics.jsonl   one JSON record per logged update (see `jaximpala.logger`)
      checkpoints/    orbax checkpoints (see `jaximpala.checkpoint`)
      summary.json    the final summary line `jaximpala train` prints
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import pathlib
import platform
import shlex
import subprocess
import sys

from jaximpala.config import RunConfig, dump_config, load_config

CONFIG_FILE = "config.yaml"
SOURCE_ROOT = pathlib.Path(__file__).resolve().parents[1]


def default_run_dir(config: RunConfig, root: str | pathlib.Path = "runs") -> pathlib.Path:
    """`runs/<env>-<algo>-s<seed>-<time>` (with a suffix if that name is taken)."""
    env_name = config.env.id.split("/")[-1].lower()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = pathlib.Path(root) / f"{env_name}-{config.algo.name}-s{config.seed}-{stamp}"
    path, suffix = base, 1
    while path.exists():
        path, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    return path


def prepare_run_dir(run_dir: str | pathlib.Path, config: RunConfig, argv: list[str]
                    ) -> pathlib.Path:
    """Creates `run_dir` and archives the config, command, source state and versions."""
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(dump_config(config))
    with open(run_dir / "command.txt", "a") as out:
        out.write(shlex.join(argv) + "\n")
    git, diff = git_state(SOURCE_ROOT)
    (run_dir / "git.json").write_text(json.dumps(git, indent=1) + "\n")
    if diff:
        (run_dir / "git.diff").write_text(diff)
    (run_dir / "versions.json").write_text(json.dumps(package_versions(), indent=1) + "\n")
    return run_dir


def read_run_config(run_dir: str | pathlib.Path, overrides: list[str] = ()) -> RunConfig:
    """The resolved config a run directory was trained with (plus `overrides`)."""
    path = pathlib.Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    return load_config(path, overrides)


def _git(root: pathlib.Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(root: pathlib.Path) -> tuple[dict, str]:
    """(commit, branch, dirty, untracked files) of the checkout at `root`, and its diff."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "note": f"{root} is not a git checkout"}, ""
    diff = _git(root, "diff", "HEAD") or ""
    untracked = (_git(root, "ls-files", "--others", "--exclude-standard") or "").split()
    return {
        "commit": commit.strip(),
        "branch": (_git(root, "rev-parse", "--abbrev-ref", "HEAD") or "").strip(),
        "dirty": bool(diff or untracked),
        "untracked": untracked,
    }, diff


def package_versions() -> dict:
    """Python, platform and the version of every installed distribution."""
    packages = {dist.metadata["Name"]: dist.version
                for dist in importlib.metadata.distributions() if dist.metadata["Name"]}
    return {"python": sys.version, "platform": platform.platform(),
            "packages": dict(sorted(packages.items(), key=lambda kv: kv[0].lower()))}
