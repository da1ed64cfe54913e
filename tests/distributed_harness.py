"""A learner process for the distributed-runtime tests: `train_distributed` with SIGTERM /
SIGINT setting its `stop` event, then a final checkpoint, as the CLI does.

    python -m tests.distributed_harness CONFIG.json OUT_DIR

CONFIG.json holds `env`, `algo`, `runtime`, `network` (keyword dicts of the configs),
`total_env_steps` and `seed`. Writes OUT_DIR/updates.jsonl (one metrics dict per update,
flushed as it goes), then OUT_DIR/checkpoint.msgpack (version + params) and
OUT_DIR/result.json when the run returns.
"""

import json
import os
import signal
import sys
import threading

from flax import serialization

from jaximpala.config import AlgoConfig, EnvConfig, RuntimeConfig
from jaximpala.networks import NetworkConfig
from jaximpala.runtime import train_distributed


def _network(fields: dict) -> NetworkConfig:
    return NetworkConfig(**{k: tuple(v) if isinstance(v, list) else v
                            for k, v in fields.items()})


def main(config_path: str, out_dir: str) -> int:
    with open(config_path) as f:
        config = json.load(f)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    updates = open(os.path.join(out_dir, "updates.jsonl"), "w")

    def on_update(metrics: dict):
        updates.write(json.dumps({**metrics, "pid": os.getpid()}) + "\n")
        updates.flush()

    result = train_distributed(
        EnvConfig(**config["env"]), AlgoConfig(**config["algo"]),
        RuntimeConfig(**config["runtime"]), total_env_steps=config["total_env_steps"],
        seed=config["seed"], network=_network(config.get("network", {})),
        on_update=on_update, stop=stop)
    updates.close()
    checkpoint = {"version": result.learner.version,
                  "params": serialization.to_state_dict(result.learner.params)}
    with open(os.path.join(out_dir, "checkpoint.msgpack"), "wb") as f:
        f.write(serialization.msgpack_serialize(checkpoint))
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump({"stopped": result.stopped, "env_steps": result.env_steps,
                   "episodes": result.episodes}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
