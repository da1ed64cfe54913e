"""Metrics logging: JSONL from a background thread, W&B optional (offline or absent)."""

import json
import sys
import threading

import pytest

from jaximpala.config import LoggingConfig
from jaximpala.logger import MetricsLogger, read_metrics, truncate_metrics


def test_records_reach_the_jsonl_in_order_with_system_metrics(tmp_path):
    logger = MetricsLogger(tmp_path, LoggingConfig(wandb_mode="disabled"))
    assert logger.wandb_run is None
    for update in range(1, 51):
        logger.log({"update": update, "loss": 1.0 / update, "bad": float("nan")})
    logger.close()
    records = read_metrics(tmp_path)
    assert [r["update"] for r in records] == list(range(1, 51))
    assert records[1]["loss"] == 0.5 and records[0]["bad"] is None  # NaN -> null, key kept
    assert records[0]["system/rss_mib"] > 0


def test_log_does_not_wait_for_a_slow_sink(tmp_path):
    logger = MetricsLogger(tmp_path, LoggingConfig(wandb_mode="disabled"))
    gate = threading.Event()
    write = logger._write
    logger._write = lambda record: (gate.wait(), write(record))  # a stalled disk / network
    logger.log({"update": 1})
    logger.log({"update": 2})  # returns although the sink is stuck on the first record
    gate.set()
    logger.close()
    assert [r["update"] for r in read_metrics(tmp_path)] == [1, 2]


def test_truncate_drops_records_after_the_checkpoint_and_torn_lines(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps({"update": u}) + "\n" for u in range(1, 6)) + '{"upda')
    truncate_metrics(tmp_path, 3)
    assert [r["update"] for r in read_metrics(tmp_path)] == [1, 2, 3]


def test_without_wandb_installed_the_run_logs_locally(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    logger = MetricsLogger(tmp_path, LoggingConfig(wandb_mode="offline"))
    logger.log({"update": 1, "loss": 2.0})
    logger.close()
    assert logger.wandb_run is None
    assert "the `wandb` package is not installed" in capsys.readouterr().err
    assert read_metrics(tmp_path)[0]["loss"] == 2.0


def test_wandb_offline_run_gets_config_and_metrics(tmp_path):
    pytest.importorskip("wandb")
    config = LoggingConfig(wandb_mode="offline", project="test", group="g", tags=("t",))
    logger = MetricsLogger(tmp_path, config, {"seed": 3, "algo": {"name": "ppo"}},
                           run_id="abc123")
    assert logger.wandb_run.config["algo"] == {"name": "ppo"}
    assert logger.wandb_run.group == "g" and list(logger.wandb_run.tags) == ["t"]
    logger.log({"update": 1, "loss": 2.0})
    logger.close()
    runs = list((tmp_path / "wandb").glob("offline-run-*-abc123"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
