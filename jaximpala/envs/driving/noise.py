"""Counter-based random numbers for the step hot path.

Each episode draws a 64-bit `key` from its own `np.random.Generator` (seeded from the episode
seed). Per-step noise is then a pure function of (key, step, stream, index), computed with the
splitmix64 finaliser on whole arrays. This keeps every env's noise independent of how many envs
share the batch (so the vector env and the single env agree bit for bit) without a per-env
Python loop over `Generator` objects on every step.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STEP_MIX = np.uint64(0xD1B54A32D192ED03)
_STREAM_MIX = np.uint64(0xABC98388FB8FAC03)


def _splitmix(x):
    """splitmix64 finaliser of one uint64 (wrapping arithmetic); compiled below both as a
    scalar function for kernels and as a ufunc for arrays."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


_splitmix_one = numba.njit(cache=True)(_splitmix)
_splitmix64 = numba.vectorize(["uint64(uint64)"], cache=True)(_splitmix)


@numba.njit(cache=True)
def uniform_at(base, counter):
    """The float `uniform` gives at `counter` of the stream whose `stream_base` is `base`
    (uint64 scalars), for compiled kernels that draw only the numbers they use."""
    bits = _splitmix_one(_splitmix_one(base) + np.uint64(counter))
    return np.float64(bits >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@functools.lru_cache(maxsize=64)
def _stream_mix(stream: int) -> np.uint64:
    """stream * _STREAM_MIX modulo 2^64 (computed on Python ints: scalar numpy would warn)."""
    return np.uint64(stream * int(_STREAM_MIX) % 2**64)


@functools.lru_cache(maxsize=64)
def _counters(size: int) -> np.ndarray:
    """[1, size] uint64 counters 0..size-1 (shared, read-only)."""
    counters = np.arange(size, dtype=np.uint64)[None, :]
    counters.flags.writeable = False
    return counters


def stream_base(key: np.ndarray, step: np.ndarray, stream: int) -> np.ndarray:
    """[N] uint64 seed of stream `stream` at this step of each env (key, step: [N])."""
    return key.astype(np.uint64) ^ (step.astype(np.uint64) * _STEP_MIX) ^ _stream_mix(stream)


def uniform(key: np.ndarray, step: np.ndarray, stream: int, size: int) -> np.ndarray:
    """Uniform floats in [0, 1).

    key: [N] uint64, step: [N] integer step counters, stream: a small constant naming the use
    (so two uses in one step get independent numbers), size: numbers per env.
    Returns [N, size] float64.
    """
    bits = _splitmix64(_splitmix64(stream_base(key, step, stream)[:, None]) + _counters(size))
    # The top 53 bits give an exactly representable double in [0, 1).
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def normal(key: np.ndarray, step: np.ndarray, stream: int, size: int) -> np.ndarray:
    """Standard normal floats via Box-Muller, both outputs of each pair used. Shapes as
    `uniform`: returns [N, size] float64."""
    pairs = (size + 1) // 2
    u = uniform(key, step, stream, 2 * pairs)
    radius = np.sqrt(-2.0 * np.log1p(-u[:, :pairs]))  # 1 - u is in (0, 1]: log is finite
    angle = 2.0 * np.pi * u[:, pairs:]
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)[:, :size]


class StepNoise:
    """The noise of one step of N envs: `uniform(stream, size)` / `normal(stream, size)`
    return [N, size] arrays, or [len(rows), size] for the env ids `rows` ([Q] ints, repeats
    allowed) alone. A consumer may skip drawing (e.g. when no vehicle respawns this step) or
    draw for a few envs: each env's numbers depend only on (key, step, stream), so this
    changes nothing else."""

    def __init__(self, key: np.ndarray, step: np.ndarray):
        self.key, self.step = key, step

    def uniform(self, stream: int, size: int, rows: np.ndarray | None = None) -> np.ndarray:
        if rows is None:
            return uniform(self.key, self.step, stream, size)
        return uniform(self.key[rows], self.step[rows], stream, size)

    def normal(self, stream: int, size: int) -> np.ndarray:
        return normal(self.key, self.step, stream, size)

    def stream_base(self, stream: int) -> np.ndarray:
        """[N] uint64 bases for `uniform_at` in compiled kernels."""
        return stream_base(self.key, self.step, stream)
