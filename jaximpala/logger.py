"""Metric sinks that never block the learner: a local JSONL file and Weights & Biases.

`MetricsLogger.log(record)` only puts the record on a queue; a background thread appends it
to `<run_dir>/metrics.jsonl` (flushed per line, so `jaximpala plot` and `tail -f` see it at
once) and passes it to W&B. W&B is optional: `wandb_mode=offline` (the default) needs no
account, and without the `wandb` package the run logs locally and says so once.

Every record also carries this process's resident memory and CPU use (`system/...`).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import queue
import sys
import threading
import time
from typing import Any

from jaximpala.config import LoggingConfig

METRICS_FILE = "metrics.jsonl"
_STOP = object()


def read_metrics(run_dir: str | pathlib.Path) -> list[dict]:
    """The records of a run's `metrics.jsonl` (a torn last line is skipped)."""
    records = []
    path = pathlib.Path(run_dir) / METRICS_FILE
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_metrics(run_dir: str | pathlib.Path, last_update: int) -> None:
    """Drops records after `last_update`: a resumed run logs those updates again."""
    path = pathlib.Path(run_dir) / METRICS_FILE
    kept = [r for r in read_metrics(run_dir) if r.get("update", 0) <= last_update]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, path)


def system_metrics() -> dict[str, float]:
    """Resident memory (MiB) and CPU use (% of one core since the last call) of this process."""
    try:
        import psutil
    except ImportError:
        return {}
    process = psutil.Process()
    return {"system/rss_mib": process.memory_info().rss / 2**20,
            "system/cpu_percent": process.cpu_percent(interval=None)}


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; the record keeps the key
    return value


class MetricsLogger:
    """Writes metric records from a background thread.

    Args:
      run_dir: the run directory (`metrics.jsonl` is appended to).
      config: the `logging` section.
      run_config: the resolved config as plain data, stored with the W&B run.
      run_id: W&B run id; a resumed run passes the same id to continue the same W&B run.
      filename: the metrics file in `run_dir` (another learner process of a multi-host
        run keeps its own beside process 0's `metrics.jsonl`).
    """

    def __init__(self, run_dir: str | pathlib.Path, config: LoggingConfig,
                 run_config: dict | None = None, run_id: str | None = None,
                 filename: str = METRICS_FILE):
        self.run_dir = pathlib.Path(run_dir)
        self._file = open(self.run_dir / filename, "a")
        self._queue: queue.Queue = queue.Queue()
        self.wandb_run = _start_wandb(self.run_dir, config, run_config, run_id)
        self._thread = threading.Thread(target=self._drain, name="metrics-logger",
                                        daemon=True)
        self._thread.start()

    def log(self, record: dict[str, Any]) -> None:
        """Queues one record (must hold `update`); returns at once."""
        self._queue.put({**record, **system_metrics(), "time": time.time()})

    def log_file(self, key: str, path: str | pathlib.Path, update: int) -> None:
        """Queues an image or video file (e.g. an evaluation GIF) for W&B."""
        self._queue.put(("file", key, str(path), update))

    def close(self) -> None:
        """Writes everything queued, then closes the file and finishes the W&B run."""
        self._queue.put(_STOP)
        self._thread.join()
        self._file.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            try:
                if isinstance(item, tuple):
                    self._write_file(*item[1:])
                else:
                    self._write(item)
            except Exception as error:  # a sink failing must not kill the run or lose the rest
                print(f"metrics logger: {type(error).__name__}: {error}", file=sys.stderr)

    def _write(self, record: dict) -> None:
        record = {k: _finite_or_none(v) for k, v in record.items()}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self.wandb_run is not None:
            self.wandb_run.log({k: v for k, v in record.items() if v is not None},
                               step=int(record["update"]))

    def _write_file(self, key: str, path: str, update: int) -> None:
        if self.wandb_run is None:
            return
        import wandb

        media = wandb.Video(path) if path.endswith((".gif", ".mp4")) else wandb.Image(path)
        self.wandb_run.log({key: media}, step=update)


def _start_wandb(run_dir: pathlib.Path, config: LoggingConfig, run_config: dict | None,
                 run_id: str | None):
    if config.wandb_mode == "disabled":
        return None
    try:
        import wandb
    except ImportError:
        print("W&B logging is off: the `wandb` package is not installed "
              "(pip install 'jaximpala[wandb]'); metrics go to "
              f"{run_dir / METRICS_FILE}", file=sys.stderr)
        return None
    return wandb.init(
        project=config.project, entity=config.entity, group=config.group,
        name=config.name or run_dir.name, tags=list(config.tags), config=run_config,
        dir=str(run_dir), mode=config.wandb_mode, id=run_id, resume="allow",
        settings=wandb.Settings(silent=True))
