"""Timing helpers shared by the benchmarks: warmed-up, interleaved, median wall time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def time_call(fn: Callable[[], object], sync: Callable[[object], object]) -> float:
    """Seconds for one call of `fn`, including `sync` (e.g. `jax.block_until_ready`)."""
    start = time.perf_counter()
    sync(fn())
    return time.perf_counter() - start


def interleaved_samples(fns: dict[str, Callable[[], object]], sync: Callable[[object], object],
                        *, rounds: int, warmup: int = 3) -> dict[str, list[float]]:
    """Seconds per call for each function, `rounds` samples each, in alternating rounds.

    Alternating the contenders call by call exposes each to the same background load, so
    their ratio is fair on a shared, noisy machine even when absolute times drift.
    """
    for fn in fns.values():
        for _ in range(warmup):
            sync(fn())
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        # Rotating who goes first removes any bias from position in the round (caches
        # warmed or evicted by the previous contender).
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(time_call(fns[name], sync))
    return samples


def interleaved_medians(fns: dict[str, Callable[[], object]], sync: Callable[[object], object],
                        *, rounds: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds per call for each function (see `interleaved_samples`)."""
    samples = interleaved_samples(fns, sync, rounds=rounds, warmup=warmup)
    return {name: statistics.median(values) for name, values in samples.items()}
