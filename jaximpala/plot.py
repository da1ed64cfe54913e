"""Plot learning curves of runs: `jaximpala plot RUN_DIR... [--metric NAME ...] [--out PNG]`.

Reads each run's `metrics.jsonl` (no W&B needed). Runs whose resolved configs differ only in
`seed` (and `run_dir`, `logging`, `checkpoint`) are one group: its curve is the mean over
seeds with a 95% confidence band of the mean (normal approximation, mean +- 1.96 std /
sqrt(n)), drawn on the env steps all its runs reached. Groups are labelled by the config
keys that tell them apart, or by `--labels`, one name per group in the order their first runs
are given.
"""

from __future__ import annotations

import json
import pathlib
import sys
import textwrap

import numpy as np

DEFAULT_METRICS = ("episode_return", "success_rate")
IGNORED_KEYS = ("seed", "run_dir", "logging.", "checkpoint.")  # none changes learning


def add_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="run directories (or folders holding run directories)")
    parser.add_argument("--metric", nargs="+", default=None,
                        help=f"metrics to plot (default: those of {list(DEFAULT_METRICS)} "
                             "that the runs logged)")
    parser.add_argument("--labels", nargs="+", default=None, metavar="NAME",
                        help="a name per group of runs, in the order the groups' first runs "
                             "are given (default: the config keys that tell them apart)")
    parser.add_argument("--out", default="learning_curves.png", help="PNG to write")
    parser.add_argument("--smooth", type=int, default=10,
                        help="moving-average window, in logged records")
    parser.add_argument("--points", type=int, default=200, help="points per curve")


def run(args) -> int:
    from jaximpala.runs import CONFIG_FILE

    run_dirs = find_runs([pathlib.Path(r) for r in args.runs], CONFIG_FILE)
    if not run_dirs:
        print(f"jaximpala plot: error: no run directories (with {CONFIG_FILE}) in "
              f"{args.runs}", file=sys.stderr)
        return 2
    groups = group_runs(run_dirs)
    if args.labels is not None:
        if len(args.labels) != len(groups):
            print(f"jaximpala plot: error: {len(args.labels)} --labels for {len(groups)} "
                  f"groups of runs: {list(groups)}", file=sys.stderr)
            return 2
        groups = dict(zip(args.labels, groups.values(), strict=True))
    metrics = args.metric or [m for m in DEFAULT_METRICS
                              if any(_has_metric(d, m) for d in run_dirs)]
    if not metrics:
        print("jaximpala plot: error: the runs have logged no episode returns yet",
              file=sys.stderr)
        return 2
    summary = plot(groups, metrics, args.out, smooth=args.smooth, points=args.points)
    print(json.dumps(summary))
    return 0


def find_runs(paths: list[pathlib.Path], config_file: str) -> list[pathlib.Path]:
    """Run directories among `paths` and, for folders that are not runs, their children."""
    found = []
    for path in paths:
        if (path / config_file).is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p.parent for p in path.glob(f"**/{config_file}"))
    return found


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = json.dumps(value)
    return out


def group_runs(run_dirs: list[pathlib.Path]) -> dict[str, list[pathlib.Path]]:
    """Runs grouped by config (seed, run_dir, logging, checkpoint ignored), labelled by
    the keys that differ. A config key a run lacks (one written before the key existed)
    counts as its current default, since new keys default to the old behaviour; keys
    without a default (inside `env.kwargs`) are "unset" there."""
    import yaml

    from jaximpala.config import load_config, to_dict

    defaults = {k: v for k, v in _flat(to_dict(load_config())).items() if v != "{}"}
    flats = {d: {k: v for k, v in {**defaults, **_flat(yaml.safe_load(
                 (d / "config.yaml").read_text()))}.items() if not k.startswith(IGNORED_KEYS)}
             for d in run_dirs}
    keys = sorted({k for f in flats.values() for k in f})
    differing = [k for k in keys if len({f.get(k) for f in flats.values()}) > 1]
    groups: dict[str, list[pathlib.Path]] = {}
    for run_dir, flat in flats.items():
        label = ", ".join(f"{k}={flat.get(k, 'unset')}" for k in differing) or (
            f"{flat['env.id']} {flat['algo.name']}".replace('"', ""))
        groups.setdefault(label, []).append(run_dir)
    return groups


def _has_metric(run_dir: pathlib.Path, metric: str) -> bool:
    from jaximpala.logger import read_metrics

    return any(r.get(metric) is not None for r in read_metrics(run_dir))


def curve(run_dir: pathlib.Path, metric: str, smooth: int) -> tuple[np.ndarray, np.ndarray]:
    """`(env_steps, smoothed metric)` of one run, from its logged records."""
    from jaximpala.logger import read_metrics

    pairs = [(r["env_steps"], r[metric]) for r in read_metrics(run_dir)
             if r.get(metric) is not None and "env_steps" in r]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    x, y = (np.asarray(v, np.float64) for v in zip(*pairs, strict=True))
    window = max(1, min(smooth, len(y)))
    # Trailing moving average with a short window at the start (no lag at the end).
    cumsum = np.cumsum(np.insert(y, 0, 0.0))
    lows = np.maximum(np.arange(1, len(y) + 1) - window, 0)
    return x, (cumsum[1:] - cumsum[lows]) / (np.arange(1, len(y) + 1) - lows)


def mean_and_band(curves: list[tuple[np.ndarray, np.ndarray]], points: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(x, mean, half_width)` on a grid up to the env steps every run reached."""
    curves = [c for c in curves if len(c[0])]
    end = min(c[0][-1] for c in curves)
    start = max(c[0][0] for c in curves)
    x = np.linspace(start, end, points) if end > start else np.array([end])
    ys = np.stack([np.interp(x, cx, cy) for cx, cy in curves])
    half = (1.96 * ys.std(axis=0, ddof=1) / np.sqrt(len(ys)) if len(ys) > 1
            else np.zeros_like(x))
    return x, ys.mean(axis=0), half


def plot(groups: dict[str, list[pathlib.Path]], metrics: list[str], out: str, *,
         smooth: int = 10, points: int = 200) -> dict:
    """Writes the PNG; returns, per metric and group, the final mean, band and seed count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    summary: dict = {"out": str(out), "metrics": {}}
    for ax, metric in zip(axes[0], metrics, strict=True):
        summary["metrics"][metric] = {}
        for label, run_dirs in groups.items():
            curves = [curve(d, metric, smooth) for d in run_dirs]
            if not any(len(c[0]) for c in curves):
                continue
            x, mean, half = mean_and_band(curves, points)
            seeds = sum(1 for c in curves if len(c[0]))
            wrapped = textwrap.fill(f"{label} (n={seeds})", 50 * len(metrics))
            line, = ax.plot(x, mean, label=wrapped)
            ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.25)
            summary["metrics"][metric][label] = {
                "final_mean": float(mean[-1]), "final_ci95": float(half[-1]),
                "env_steps": float(x[-1]), "seeds": seeds}
        ax.set_xlabel("env steps")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    # One legend for all panels, below them: config-key labels are often wider than a panel.
    handles, labels = axes[0][0].get_legend_handles_labels()
    legend = fig.legend(handles, labels, loc="upper center", fontsize="small",
                        bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=100, bbox_inches="tight", bbox_extra_artists=[legend])
    plt.close(fig)
    return summary
