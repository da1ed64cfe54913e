"""Orbax checkpoints: exact round trip (PRNG keys included), keep-K, atomic step dirs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaximpala.checkpoint import Checkpointer


def _state(seed):
    key = jax.random.key(seed)
    return {"w": jax.random.normal(key, (3, 2)), "step": jnp.asarray(seed, jnp.int32),
            "key": jax.random.fold_in(key, 1), "nested": {"b": np.arange(4.0)}}


def test_round_trip_is_exact_and_keeps_key_types(tmp_path):
    checkpointer = Checkpointer(tmp_path / "ckpt", keep=2)
    state = _state(5)
    checkpointer.save(7, state, b"collector bytes", {"env_steps": 70})
    restored = checkpointer.restore(_state(0))
    assert restored.step == 7 and restored.collector_state == b"collector bytes"
    assert restored.meta == {"env_steps": 70, "step": 7}
    np.testing.assert_array_equal(restored.train_state["w"], state["w"])
    assert restored.train_state["key"].dtype == state["key"].dtype
    np.testing.assert_array_equal(jax.random.key_data(restored.train_state["key"]),
                                  jax.random.key_data(state["key"]))
    # The restored key draws the same numbers.
    np.testing.assert_array_equal(jax.random.uniform(restored.train_state["key"], (3,)),
                                  jax.random.uniform(state["key"], (3,)))


def test_keeps_the_newest_k_and_no_collector_state_reads_as_none(tmp_path):
    checkpointer = Checkpointer(tmp_path, keep=2)
    for step in (1, 2, 3):
        checkpointer.save(step, _state(step), None, {})
    checkpointer.save(3, _state(99), None, {})  # same update again: kept as first written
    assert checkpointer.all_steps() == [2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2", "3"]  # no temporary dirs
    restored = checkpointer.restore(_state(0))
    assert restored.collector_state is None and int(restored.train_state["step"]) == 3
    assert int(checkpointer.restore(_state(0), step=2).train_state["step"]) == 2


def test_restoring_from_an_empty_directory_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        Checkpointer(tmp_path).restore(_state(0))
