"""Float64 numpy references written directly from the papers, for the loss tests.

They use the papers' explicit sums, not the backward recursion the library uses, so an
error in the recursion cannot be mirrored here. They know nothing of masks: the boundary
tests cut unrolls into episode segments and call these on each segment.
"""

from __future__ import annotations

import numpy as np


def vtrace_segment(log_rhos, discounts, rewards, values, bootstrap_value, *,
                   rho_bar=1.0, c_bar=1.0, pg_rho_bar=1.0, lambda_=1.0):
    """V-trace for one 1-D segment `[T]`, IMPALA eq. (1) and Section 4.2.

    v_s = V(x_s) + sum_{t>=s} (prod_{i=s}^{t-1} gamma_i c_i) delta_t,
    delta_t = rho_t (r_t + gamma_t V(x_{t+1}) - V(x_t)).
    """
    log_rhos, discounts, rewards, values = (
        np.asarray(a, np.float64) for a in (log_rhos, discounts, rewards, values))
    rhos = np.exp(log_rhos)
    clipped_rhos = np.minimum(rho_bar, rhos)
    cs = lambda_ * np.minimum(c_bar, rhos)
    values_tp1 = np.append(values[1:], bootstrap_value)
    deltas = clipped_rhos * (rewards + discounts * values_tp1 - values)
    n = len(rewards)
    vs = np.empty(n)
    for s in range(n):
        total, trace = 0.0, 1.0
        for t in range(s, n):
            total += trace * deltas[t]
            trace *= discounts[t] * cs[t]
        vs[s] = values[s] + total
    vs_tp1 = np.append(vs[1:], bootstrap_value)
    pg_advantages = np.minimum(pg_rho_bar, rhos) * (rewards + discounts * vs_tp1 - values)
    return vs, pg_advantages


def gae_segment(rewards, discounts, values, bootstrap_value, *, lambda_=0.95):
    """GAE for one 1-D segment `[T]`, Schulman et al. 2016 eq. (16) as an explicit sum."""
    rewards, discounts, values = (np.asarray(a, np.float64) for a in (rewards, discounts, values))
    values_tp1 = np.append(values[1:], bootstrap_value)
    deltas = rewards + discounts * values_tp1 - values
    n = len(rewards)
    advantages = np.empty(n)
    for s in range(n):
        total, weight = 0.0, 1.0
        for t in range(s, n):
            total += weight * deltas[t]
            weight *= discounts[t] * lambda_
        advantages[s] = total
    return advantages, advantages + values


def valid_segments(mask_column):
    """Maximal runs `[start, end)` of valid steps in a 1-D mask."""
    segments, start = [], None
    for t, valid in enumerate(mask_column):
        if valid and start is None:
            start = t
        if not valid and start is not None:
            segments.append((start, t))
            start = None
    if start is not None:
        segments.append((start, len(mask_column)))
    return segments


def per_segment(fn, mask, values, bootstrap_value, sequences, **kwargs):
    """Applies a segment reference to each episode segment of each column of `[T, B]` data.

    A segment that ends before the unroll does is followed by the masked autoreset step,
    whose index holds the value of the episode's final observation: that is the segment's
    bootstrap. Masked steps get `(values, 0)`.
    """
    num_steps, batch = values.shape
    first = np.array(values, np.float64)
    second = np.zeros((num_steps, batch))
    for b in range(batch):
        for start, end in valid_segments(mask[:, b]):
            bootstrap = bootstrap_value[b] if end == num_steps else values[end, b]
            columns = [seq[start:end, b] for seq in sequences]
            out_a, out_b = fn(*columns, values[start:end, b], bootstrap, **kwargs)
            first[start:end, b], second[start:end, b] = out_a, out_b
    return first, second


def random_unroll(rng, num_steps, batch, *, gamma=0.9, p_end=0.15):
    """A `[T, B]` unroll with terminations, truncations and next-step autoreset.

    Each step ends its episode with probability `p_end`, half by termination (discount 0)
    and half by truncation (discount gamma). The step after an end is the autoreset
    transition: masked, and filled with garbage (huge rewards and log-ratios) that must
    not leak into any result.
    """
    mask = np.ones((num_steps, batch), bool)
    discounts = np.full((num_steps, batch), gamma)
    for b in range(batch):
        # An unroll may open on the autoreset step of an episode the previous unroll ended.
        t = 0
        if rng.random() < 0.3:
            mask[0, b] = False
            t = 1
        while t < num_steps:
            if rng.random() < p_end:
                if rng.random() < 0.5:
                    discounts[t, b] = 0.0
                if t + 1 < num_steps:
                    mask[t + 1, b] = False
                t += 2
            else:
                t += 1
    rewards = rng.normal(size=(num_steps, batch))
    values = rng.normal(size=(num_steps, batch))
    log_rhos = rng.normal(scale=0.5, size=(num_steps, batch))
    rewards[~mask] = 1e6
    log_rhos[~mask] = 30.0
    bootstrap_value = rng.normal(size=(batch,))
    return dict(log_rhos=log_rhos, discounts=discounts, rewards=rewards, values=values,
                bootstrap_value=bootstrap_value, mask=mask)


def discounted_returns(rewards, discounts, bootstrap_value):
    """`G_t = r_t + gamma_t G_{t+1}`, `G_T = bootstrap`, for `[T, B]` float64 arrays."""
    returns = np.empty_like(rewards)
    running = np.array(bootstrap_value, np.float64)
    for t in reversed(range(len(rewards))):
        running = rewards[t] + discounts[t] * running
        returns[t] = running
    return returns


def use_scan_method(monkeypatch, method):
    """Maps a test's method name to a `recurrence` method, forcing the scan's variant.

    "fused_scan" forces the fused loop body (used on CPU for wide rows) at any width;
    "scan" forces the precomputed-TD-term loop.
    """
    from jaximpala.losses import recurrence

    if method == "fused_scan":
        monkeypatch.setattr(recurrence, "_FUSED_MIN_ROW", 1)
        return "scan"
    monkeypatch.setattr(recurrence, "_FUSED_MIN_ROW", 10**9)
    return method
