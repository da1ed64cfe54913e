"""Ego collision tests: oriented rectangles by the separating axis theorem, in road coordinates.

Only the ego's collisions matter (other road users avoid each other through IDM), so the cost
is one ego-vs-object test per object: O(M + P) per env, never quadratic. A cheap bounding
circle test gates the exact one.
"""

from __future__ import annotations

import numpy as np


def boxes_overlap(
    center_a: tuple[np.ndarray, np.ndarray],
    heading_a: np.ndarray,
    half_a: tuple[np.ndarray, np.ndarray],
    center_b: tuple[np.ndarray, np.ndarray],
    heading_b: np.ndarray,
    half_b: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Whether oriented rectangles A and B overlap (touching counts as overlap).

    Each rectangle: centre (x, y), heading (rad, of its length axis), half sizes
    (half_length, half_width). All arrays broadcast together, e.g. A [N, 1] against B [N, K];
    the result has the broadcast shape.
    """
    dx, dy = center_b[0] - center_a[0], center_b[1] - center_a[1]
    ca, sa = np.cos(heading_a), np.sin(heading_a)
    cb, sb = np.cos(heading_b), np.sin(heading_b)
    separated = np.zeros(np.broadcast(dx, ca, cb).shape, bool)
    for ux, uy in ((ca, sa), (-sa, ca), (cb, sb), (-sb, cb)):
        distance = np.abs(dx * ux + dy * uy)
        reach_a = half_a[0] * np.abs(ca * ux + sa * uy) + half_a[1] * np.abs(-sa * ux + ca * uy)
        reach_b = half_b[0] * np.abs(cb * ux + sb * uy) + half_b[1] * np.abs(-sb * ux + cb * uy)
        separated |= distance > reach_a + reach_b
    return ~separated


def ego_hits(
    ego_s: np.ndarray,
    ego_d: np.ndarray,
    ego_heading: np.ndarray,
    ego_half: tuple[float, float],
    obj_s: np.ndarray,
    obj_d: np.ndarray,
    obj_heading: np.ndarray,
    obj_half: tuple[np.ndarray, np.ndarray],
    valid: np.ndarray,
) -> np.ndarray:
    """[N] bool: the ego overlaps any valid object.

    ego_*: [N]; obj_*: [N, K]; ego_half: (half_length, half_width) scalars;
    obj_half: ([N, K], [N, K]) or broadcastable; valid: [N, K] bool.
    """
    ds, dd = obj_s - ego_s[:, None], obj_d - ego_d[:, None]
    full = lambda x: x if np.shape(x) == ds.shape else np.broadcast_to(x, ds.shape)
    half_length, half_width = full(obj_half[0]), full(obj_half[1])
    reach = np.hypot(*ego_half) + np.hypot(half_length, half_width)
    env, slot = np.nonzero(valid & (ds * ds + dd * dd <= reach * reach))
    result = np.zeros(ego_s.shape, bool)
    if env.size:  # exact test on the few pairs whose bounding circles meet
        hit = boxes_overlap(
            (np.zeros(env.size), np.zeros(env.size)), ego_heading[env], ego_half,
            (ds[env, slot], dd[env, slot]), full(obj_heading)[env, slot],
            (half_length[env, slot], half_width[env, slot]),
        )
        result[env[hit]] = True
    return result
