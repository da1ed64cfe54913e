import jax
import numpy as np
import pytest

from jaximpala.trajectory import Trajectory
from jaximpala.transport.codec import MAX_HEADER_BYTES, RejectedMessage
from jaximpala.transport.trajectories import TrajectoryCodec

T, N = 3, 2
META = {"actor_id": 1, "incarnation": 2, "sequence": 3, "policy_version": 4}


def _trajectory(rng, version=4) -> Trajectory:
    """Dict observations, a tuple action and an LSTM-like core state: a nested pytree."""
    return Trajectory(
        observations={"camera": rng.integers(0, 255, (T + 1, N, 4, 4, 3), dtype=np.uint8),
                      "state": rng.normal(size=(T + 1, N, 5)).astype(np.float32)},
        actions=(rng.integers(0, 3, (T, N)).astype(np.int32),
                 rng.normal(size=(T, N, 2)).astype(np.float32)),
        rewards=rng.normal(size=(T, N)).astype(np.float32),
        discounts=np.full((T, N), 0.99, np.float32),
        mask=rng.random((T, N)) > 0.2,
        episode_starts=rng.random((T + 1, N)) > 0.8,
        behaviour_log_probs=rng.normal(size=(T, N)).astype(np.float32),
        behaviour_dist_params=rng.normal(size=(T, N, 7)).astype(np.float32),
        behaviour_values=rng.normal(size=(T, N)).astype(np.float32),
        core_state=(np.zeros((N, 8), np.float32), np.ones((N, 8), np.float32)),
        policy_versions=np.full(N, version, np.int32),
    )


def _wire(frames):
    return [bytes(f) for f in frames]


def test_round_trip_rebuilds_the_pytree_exactly():
    rng = np.random.default_rng(0)
    example = _trajectory(rng)
    codec = TrajectoryCodec(example)
    sent = _trajectory(rng)
    received, meta = codec.decode(_wire(codec.encode(sent, META)))
    assert meta == META
    assert codec.num_envs == N
    for field in Trajectory._fields:
        want, got = getattr(sent, field), getattr(received, field)
        assert type(got) is type(want)
    flat = lambda t: [np.asarray(x) for x in jax.tree_util.tree_leaves(t)]
    for want, got in zip(flat(sent), flat(received), strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


def test_names_follow_tree_paths_and_rewards_must_be_finite():
    codec = TrajectoryCodec(_trajectory(np.random.default_rng(0)))
    assert ".observations['camera']" in codec.spec.arrays
    assert set(codec.spec.finite) == {".rewards", ".discounts", ".behaviour_log_probs",
                                      ".behaviour_values"}
    assert codec.spec.max_message_bytes == codec.spec.payload_bytes + MAX_HEADER_BYTES


@pytest.mark.parametrize("field", ["rewards", "discounts", "behaviour_values"])
def test_non_finite_learning_inputs_are_rejected(field):
    rng = np.random.default_rng(1)
    codec = TrajectoryCodec(_trajectory(rng))
    bad = _trajectory(rng)
    values = getattr(bad, field).copy()
    values[1, 0] = np.inf if field == "discounts" else np.nan
    with pytest.raises(RejectedMessage) as info:
        codec.decode(_wire(codec.encode(bad._replace(**{field: values}), META)))
    assert info.value.reason == "non_finite"


def test_a_header_version_that_disagrees_with_the_columns_is_rejected():
    rng = np.random.default_rng(2)
    codec = TrajectoryCodec(_trajectory(rng))
    with pytest.raises(RejectedMessage) as info:
        codec.decode(_wire(codec.encode(_trajectory(rng, version=3), META)))
    assert info.value.reason == "meta_mismatch"


def test_a_different_structure_is_rejected():
    rng = np.random.default_rng(3)
    codec = TrajectoryCodec(_trajectory(rng))
    other = _trajectory(rng)
    other = other._replace(observations={"state": other.observations["state"]})
    with pytest.raises(RejectedMessage) as info:
        codec.decode(_wire(TrajectoryCodec(other).encode(other, META)))
    assert info.value.reason == "frame_count"
