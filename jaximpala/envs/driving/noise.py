"""Counter-based random numbers for the step hot path.

Each episode draws a 64-bit `key` from its own `np.random.Generator` (seeded from the episode
seed). Per-step noise is then a pure function of (key, step, stream, index), computed with the
splitmix64 finaliser in compiled loops over all envs. This keeps every env's noise independent
of how many envs share the batch (so the vector env and the single env agree bit for bit)
without a per-env Python loop over `Generator` objects on every step.
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
    """splitmix64 finaliser of one uint64 (wrapping arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


_splitmix_one = numba.njit(cache=True)(_splitmix)


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


def stream_base(key: np.ndarray, step: np.ndarray, stream: int) -> np.ndarray:
    """[N] uint64 seed of stream `stream` at this step of each env (key, step: [N])."""
    return key.astype(np.uint64) ^ (step.astype(np.uint64) * _STEP_MIX) ^ _stream_mix(stream)


@numba.njit(cache=True)
def _row_base(key, step, stream_mix):
    """splitmix64 of one env's stream_base (uint64 key, int step): counter 0 of its row."""
    return _splitmix_one(key ^ (np.uint64(step) * _STEP_MIX) ^ stream_mix)


@numba.njit(cache=True)
def _uniform_rows(key, step, stream_mix, size, out):
    """Kernel of `uniform`: out [N, size] from key, step [N] (uint64, int64) and the
    stream's `_stream_mix`; integer arithmetic, so exactly the array formula."""
    for i in range(key.shape[0]):
        base = _row_base(key[i], step[i], stream_mix)
        for c in range(size):
            bits = _splitmix_one(base + np.uint64(c))
            out[i, c] = np.float64(bits >> np.uint64(11)) * (1.0 / 9007199254740992.0)


def uniform(key: np.ndarray, step: np.ndarray, stream: int, size: int) -> np.ndarray:
    """Uniform floats in [0, 1).

    key: [N] uint64, step: [N] integer step counters, stream: a small constant naming the use
    (so two uses in one step get independent numbers), size: numbers per env.
    Returns [N, size] float64: the top 53 bits of splitmix64(splitmix64(stream_base) + index),
    an exactly representable double in [0, 1).
    """
    out = np.empty((key.shape[0], size))
    _uniform_rows(key.astype(np.uint64), step.astype(np.int64), _stream_mix(stream), size, out)
    return out


@numba.njit(cache=True)
def _box_muller_inputs(key, step, stream_mix, pairs, neg_first, angle):
    """Kernel of `normal`: float32 -u into neg_first and 2 pi u' into angle ([N, pairs] each),
    u and u' the uniforms at counters [0, pairs) and [pairs, 2 pairs) of the stream, with 24
    bits each (exact in float32, and 1 - u >= 2^-24 keeps the log finite)."""
    for i in range(key.shape[0]):
        base = _row_base(key[i], step[i], stream_mix)
        for c in range(2 * pairs):
            bits = _splitmix_one(base + np.uint64(c))
            u = np.float32(bits >> np.uint64(40)) * np.float32(1.0 / 16777216.0)
            if c < pairs:
                neg_first[i, c] = -u
            else:
                angle[i, c - pairs] = np.float32(2.0 * np.pi) * u


@numba.njit(cache=True)
def _box_muller(log_first, cos_angle, sin_angle, size, out):
    """out [N, size]: radius cos, then radius sin, of the pairs ([N, pairs] inputs)."""
    pairs = log_first.shape[1]
    for i in range(out.shape[0]):
        for c in range(size):
            pair = c if c < pairs else c - pairs
            radius = np.sqrt(-2.0 * np.float64(log_first[i, pair]))
            trig = cos_angle[i, pair] if c < pairs else sin_angle[i, pair]
            out[i, c] = radius * np.float64(trig)


def normal(key: np.ndarray, step: np.ndarray, stream: int, size: int) -> np.ndarray:
    """Standard normal floats via Box-Muller, both outputs of each pair used. Shapes as
    `uniform`: returns [N, size] float64.

    The uniforms have 24 bits and numpy computes log1p, cos and sin in float32 (its SIMD
    loops round each element the same whatever the array's length, which kernels calling
    libm need not, and cost a fifth of float64's): |z| < 5.8, precision ~1e-7. Enough for
    sensor and road noise, which is all this draws."""
    pairs = (size + 1) // 2
    n = key.shape[0]
    neg_first = np.empty((n, pairs), np.float32)
    angle = np.empty((n, pairs), np.float32)
    _box_muller_inputs(key.astype(np.uint64), step.astype(np.int64), _stream_mix(stream),
                       pairs, neg_first, angle)
    out = np.empty((n, size))
    _box_muller(np.log1p(neg_first), np.cos(angle), np.sin(angle), size, out)
    return out


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
