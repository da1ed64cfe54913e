"""Orbax checkpoints of a run: train state, collector state and counters, atomically.

A checkpoint is one orbax step directory `checkpoints/<update>/` holding
- `train_state`: the learner's `TrainState` (params incl. observation normalisers, optimizer
  state, adaptive-KL state, update counter, PRNG key, non-finite counters);
- `collector`: the inline collector's `get_state()` bytes (env, observation, RNG, episode
  sums), empty for the distributed runtime, whose actors cannot be snapshotted;
- `meta`: JSON counters (update, env steps, wall time).
Orbax writes into a temporary directory and renames it when complete, so a crash never leaves
a half-written checkpoint that looks valid; the newest `keep` are kept.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


@dataclasses.dataclass
class Restored:
    """A checkpoint read back: `train_state` has the template's structure and key types."""

    step: int
    train_state: Any
    collector_state: bytes | None
    meta: dict


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_arrays(tree):
    """Typed PRNG keys as their raw uint32 data; every leaf a numpy array (orbax's input)."""
    return jax.tree.map(
        lambda x: np.asarray(jax.random.key_data(x)) if _is_key(x) else np.asarray(x), tree)


def _from_arrays(tree, template):
    """Inverse of `_to_arrays`, taking key types from `template`."""
    return jax.tree.map(
        lambda x, t: jax.random.wrap_key_data(x, impl=jax.random.key_impl(t))
        if _is_key(t) else x, tree, template)


class Checkpointer:
    """Saves and restores a run's checkpoints under `directory` (created if missing)."""

    def __init__(self, directory: str | pathlib.Path, keep: int = 3):
        self.directory = pathlib.Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=False))

    def save(self, step: int, train_state: Any, collector_state: bytes | None,
             meta: dict) -> None:
        """Writes checkpoint `step` (the update count) and drops the oldest beyond `keep`."""
        if step in self._manager.all_steps():
            return  # already saved at this update (e.g. periodic, then the final one)
        # Orbax refuses zero-size arrays, so "no collector state" is one byte and a flag.
        blob = np.frombuffer(collector_state or b"\0", np.uint8)
        self._manager.save(step, args=ocp.args.Composite(
            train_state=ocp.args.StandardSave(_to_arrays(train_state)),
            collector=ocp.args.ArraySave(blob),
            meta=ocp.args.JsonSave({**meta, "step": step,
                                    "has_collector_state": collector_state is not None})))
        self._manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, template: Any, step: int | None = None) -> Restored:
        """Reads checkpoint `step` (default: the newest) into the structure of `template`.

        Raises:
          FileNotFoundError: if there is no checkpoint.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        restored = self._manager.restore(step, args=ocp.args.Composite(
            train_state=ocp.args.StandardRestore(_to_arrays(template)),
            collector=ocp.args.ArrayRestore(),
            meta=ocp.args.JsonRestore()))
        meta = dict(restored.meta)
        blob = (np.asarray(restored.collector, np.uint8).tobytes()
                if meta.pop("has_collector_state") else None)
        return Restored(step, _from_arrays(restored.train_state, template), blob, meta)

    def close(self) -> None:
        self._manager.close()
