"""V-trace and GAE against rlax: same float32 data, jitted, warmed up, median of many calls.

Prints one row per (estimator, T, B) with our time, rlax's and the ratio ours/rlax (< 1 is
faster; `min_ratio` compares the fastest calls, which background load on a shared machine
cannot inflate), plus our associative-scan formulation. "ours" is what `"auto"` picks on this
backend. Each pair returns the same arrays: (vs, pg_advantages) for V-trace; advantages for
"gae"; (advantages, returns) for "gae+ret". Run with
`jaximpala bench losses` or `python experiments/bench/losses.py` (needs the `bench` extra:
`pip install -e ".[bench]"`).
"""

from __future__ import annotations

import argparse
import json
import statistics

DEFAULT_SIZES = ((32, 256), (128, 256), (512, 64), (128, 4096))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default=",".join(f"{t}x{b}" for t, b in DEFAULT_SIZES),
                        help="comma-separated TxB sizes (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=50,
                        help="timed calls per contender and size (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        try:
            t, b = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--sizes: expected TxB items like 128x256, got {item!r}") from None
        sizes.append((t, b))
    return sizes


def _contenders(num_steps: int, batch: int):
    """Jitted callables for each estimator and formulation, on one shared data set."""
    import jax
    import jax.numpy as jnp
    import rlax

    from jaximpala.losses.gae import _gae
    from jaximpala.losses.vtrace import _vtrace

    keys = jax.random.split(jax.random.key(num_steps * 100_003 + batch), 5)
    shape = (num_steps, batch)
    log_rhos = 0.3 * jax.random.normal(keys[0], shape)
    discounts = jnp.where(jax.random.uniform(keys[1], shape) < 0.02, 0.0, 0.99)
    rewards = jax.random.normal(keys[2], shape)
    values = jax.random.normal(keys[3], shape)
    bootstrap = jax.random.normal(keys[4], (batch,))

    # Every contender returns the same quantities, so unused outputs cannot flatter anyone:
    # V-trace: (vs, pg_advantages). GAE: advantages, and separately (advantages, returns).
    def ours_vtrace(method):
        fn = jax.jit(lambda *a: tuple(_vtrace(
            *a, mask=None, clip_rho_threshold=1.0, clip_c_threshold=1.0,
            clip_pg_rho_threshold=1.0, lambda_=1.0, method=method)))
        return lambda: fn(log_rhos, discounts, rewards, values, bootstrap)

    rlax_vtrace_fn = jax.vmap(rlax.vtrace_td_error_and_advantage, in_axes=1, out_axes=1)

    @jax.jit
    def rlax_vtrace(log_rhos, discounts, rewards, values, bootstrap):
        v_t = jnp.concatenate([values[1:], bootstrap[None]], axis=0)
        out = rlax_vtrace_fn(values, v_t, rewards, discounts, jnp.exp(log_rhos))
        return out.errors + values, out.pg_advantage

    def ours_gae(method, with_returns):
        fn = jax.jit(lambda *a: tuple(
            _gae(*a, lambda_=0.95, mask=None, method=method)[: 2 if with_returns else 1]))
        return lambda: fn(rewards, discounts, values, bootstrap)

    rlax_gae_fn = jax.vmap(rlax.truncated_generalized_advantage_estimation,
                           in_axes=(1, 1, None, 1), out_axes=1)

    def rlax_gae(with_returns):
        @jax.jit
        def fn(rewards, discounts, values, bootstrap):
            advantages = rlax_gae_fn(rewards, discounts, 0.95,
                                     jnp.concatenate([values, bootstrap[None]], axis=0))
            return (advantages, advantages + values) if with_returns else (advantages,)

        return lambda: fn(rewards, discounts, values, bootstrap)

    return {
        "vtrace": {
            "ours": ours_vtrace("auto"),
            "rlax": lambda: rlax_vtrace(log_rhos, discounts, rewards, values, bootstrap),
            "associative": ours_vtrace("associative"),
        },
        "gae": {
            "ours": ours_gae("auto", False),
            "rlax": rlax_gae(False),
            "associative": ours_gae("associative", False),
        },
        "gae+ret": {
            "ours": ours_gae("auto", True),
            "rlax": rlax_gae(True),
            "associative": ours_gae("associative", True),
        },
    }


def run(args: argparse.Namespace) -> int:
    try:
        import rlax  # noqa: F401
    except ImportError:
        raise SystemExit('rlax is needed for this benchmark: pip install -e ".[bench]"') from None
    import jax

    from jaximpala.bench.timing import interleaved_samples
    from jaximpala.losses.recurrence import resolve_method

    print(f"backend={jax.default_backend()} devices={jax.devices()} "
          f"auto={resolve_method('auto')} rounds={args.rounds}")
    header = (f"{'estimator':<9} {'T':>5} {'B':>5} {'ours_us':>9} {'rlax_us':>9} "
              f"{'ours/rlax':>9} {'min_ratio':>9} {'assoc_us':>9} {'assoc/rlax':>10}")
    print(header)
    rows = []
    for num_steps, batch in _parse_sizes(args.sizes):
        for estimator, fns in _contenders(num_steps, batch).items():
            samples = interleaved_samples(fns, jax.block_until_ready, rounds=args.rounds)
            med = {name: statistics.median(values) for name, values in samples.items()}
            row = {"estimator": estimator, "T": num_steps, "B": batch,
                   **{f"{k}_us": v * 1e6 for k, v in med.items()},
                   "ours_over_rlax": med["ours"] / med["rlax"],
                   "ours_over_rlax_min": min(samples["ours"]) / min(samples["rlax"]),
                   "associative_over_rlax": med["associative"] / med["rlax"]}
            rows.append(row)
            print(f"{estimator:<9} {num_steps:>5} {batch:>5} {row['ours_us']:>9.1f} "
                  f"{row['rlax_us']:>9.1f} {row['ours_over_rlax']:>9.3f} "
                  f"{row['ours_over_rlax_min']:>9.3f} "
                  f"{row['associative_us']:>9.1f} "
                  f"{row['associative_over_rlax']:>10.3f}", flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0
