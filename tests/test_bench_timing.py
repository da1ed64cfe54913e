import time

from jaximpala.bench.timing import interleaved_medians


def test_interleaved_medians_rank_contenders_and_sync_every_call():
    synced = []
    medians = interleaved_medians(
        {"fast": lambda: "fast", "slow": lambda: time.sleep(0.004) or "slow"},
        synced.append, rounds=5, warmup=1)
    assert medians["slow"] > medians["fast"]
    assert medians["slow"] >= 0.004
    # Warmup, then timed calls alternating between the contenders, rotating who goes first.
    assert synced == ["fast", "slow"] + ["fast", "slow", "slow", "fast"] * 2 + ["fast", "slow"]
