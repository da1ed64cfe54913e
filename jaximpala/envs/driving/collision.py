"""Ego collision tests: oriented rectangles by the separating axis theorem, in road coordinates.

Only the ego's collisions matter (other road users avoid each other through IDM), so the cost
is one ego-vs-object test per object: O(M + P) per env, never quadratic. A cheap bounding
circle test gates the exact one; the per-env loop is compiled (numba).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba.extending import register_jitable


@register_jitable  # arrays from numpy, scalars from the compiled loop
def _overlap(dx, dy, ca, sa, half_a, cb, sb, half_b):
    """Separating axis test of A (cos, sin of its heading, half sizes) against B at offset
    (dx, dy) from A: True where no axis of either rectangle separates them."""
    overlap = True
    for ux, uy in ((ca, sa), (-sa, ca), (cb, sb), (-sb, cb)):
        distance = abs(dx * ux + dy * uy)
        reach_a = half_a[0] * abs(ca * ux + sa * uy) + half_a[1] * abs(-sa * ux + ca * uy)
        reach_b = half_b[0] * abs(cb * ux + sb * uy) + half_b[1] * abs(-sb * ux + cb * uy)
        overlap = overlap & (distance <= reach_a + reach_b)
    return overlap


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
    dx, dy = np.subtract(center_b[0], center_a[0]), np.subtract(center_b[1], center_a[1])
    overlap = _overlap(dx, dy, np.cos(heading_a), np.sin(heading_a), half_a,
                       np.cos(heading_b), np.sin(heading_b), half_b)
    return np.broadcast_to(overlap, np.broadcast(dx, heading_a, heading_b).shape)


@numba.njit(cache=True)
def _ego_hits(ego_s, ego_d, ego_cos, ego_sin, ego_half, obj_s, obj_d, obj_cos, obj_sin,
              half_length, half_width, reach, valid, hit):
    for i in range(obj_s.shape[0]):
        for j in range(obj_s.shape[1]):
            ds, dd = obj_s[i, j] - ego_s[i], obj_d[i, j] - ego_d[i]
            # exact test only where the bounding circles meet
            if valid[i, j] and ds * ds + dd * dd <= reach[i, j] * reach[i, j]:
                if _overlap(ds, dd, ego_cos[i], ego_sin[i], ego_half, obj_cos[i, j],
                            obj_sin[i, j], (half_length[i, j], half_width[i, j])):
                    hit[i] = True
                    break


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
    full = lambda x: (x if np.shape(x) == obj_s.shape
                      else np.ascontiguousarray(np.broadcast_to(x, obj_s.shape), np.float64))
    heading = full(obj_heading)
    objects = ObjectBoxes(obj_s, obj_d, np.cos(heading), np.sin(heading), full(obj_half[0]),
                          full(obj_half[1]),
                          valid if valid.shape == obj_s.shape
                          else np.broadcast_to(valid, obj_s.shape))
    return ego_hits_any(ego_s, ego_d, ego_heading, ego_half, [objects])


class ObjectBoxes(NamedTuple):
    """Road-aligned object boxes for `ego_hits_any`; every field [N, K] (valid bool)."""

    s: np.ndarray
    d: np.ndarray
    cos: np.ndarray  # of the heading
    sin: np.ndarray
    half_length: np.ndarray
    half_width: np.ndarray
    valid: np.ndarray


def ego_hits_any(ego_s, ego_d, ego_heading, ego_half: tuple[float, float],
                 groups: list[ObjectBoxes]) -> np.ndarray:
    """[N] bool: the ego overlaps a valid object of any group. ego_*: [N]; ego_half:
    (half_length, half_width) scalars; each group's arrays [N, K] (K may differ). Groups
    let callers pass vehicles and pedestrians without concatenating them."""
    hit = np.zeros(ego_s.shape, bool)
    ego_cos, ego_sin = np.cos(ego_heading), np.sin(ego_heading)
    ego_half = (float(ego_half[0]), float(ego_half[1]))
    ego_reach = np.hypot(*ego_half)
    for g in groups:
        reach = ego_reach + np.hypot(g.half_length, g.half_width)
        _ego_hits(ego_s, ego_d, ego_cos, ego_sin, ego_half, g.s, g.d, g.cos, g.sin,
                  g.half_length, g.half_width, reach, g.valid, hit)
    return hit
