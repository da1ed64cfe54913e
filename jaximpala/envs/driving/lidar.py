"""The `lidar` observation: R range rays from the ego centre, in road coordinates.

Rays are cast analytically against the two road edges (straight lines in road coordinates)
and against the oriented boxes of only the nearest few vehicles and pedestrians, so a scan is
O(R * K) per env with K fixed. Readings are distances with Gaussian sensor noise, capped at the
episode's visibility (`sensor_range`) and divided by `lidar_max_range`: 1 means nothing
within the maximum range, and poor visibility shows as a lower ceiling.
"""

from __future__ import annotations

import numpy as np

NEAREST_VEHICLES = 8
NEAREST_PEDESTRIANS = 4
_TINY = 1e-12


def ray_angles(num_rays: int) -> np.ndarray:
    """[R] ray angles relative to the ego heading: ray 0 points straight ahead, then
    counter-clockwise (ray R/4 points left)."""
    return 2.0 * np.pi * np.arange(num_rays) / num_rays


def nearest(ds: np.ndarray, dd: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
    """[N, k] column indices of the k valid objects nearest the ego ([N, M] inputs).
    Invalid objects rank last; k must be <= M."""
    distance = np.where(valid, ds * ds + dd * dd, np.inf)
    if k >= distance.shape[1]:
        return np.broadcast_to(np.arange(distance.shape[1]), distance.shape)
    return np.argpartition(distance, k - 1, axis=1)[:, :k]


def ray_box_distance(
    cos_ray: np.ndarray,
    sin_ray: np.ndarray,
    box_ds: np.ndarray,
    box_dd: np.ndarray,
    box_heading: np.ndarray,
    half_length: np.ndarray,
    half_width: np.ndarray,
) -> np.ndarray:
    """[N, R, K] distance along each ray from the origin to each box (inf on a miss).

    cos_ray, sin_ray: [N, R] ray directions in road coordinates. Boxes: [N, K] centre offsets
    from the ray origin, heading, half sizes. Slab test in each box's own frame.
    """
    cb, sb = np.cos(box_heading)[:, None, :], np.sin(box_heading)[:, None, :]
    # ray origin and direction in the box frame
    ox = -(box_ds * np.cos(box_heading) + box_dd * np.sin(box_heading))[:, None, :]
    oy = -(-box_ds * np.sin(box_heading) + box_dd * np.cos(box_heading))[:, None, :]
    c, s = cos_ray[:, :, None], sin_ray[:, :, None]
    dx = c * cb + s * sb
    dy = -c * sb + s * cb
    dx = np.where(np.abs(dx) < _TINY, _TINY, dx)
    dy = np.where(np.abs(dy) < _TINY, _TINY, dy)
    hl, hw = half_length[:, None, :], half_width[:, None, :]
    tx1, tx2 = (-hl - ox) / dx, (hl - ox) / dx
    ty1, ty2 = (-hw - oy) / dy, (hw - oy) / dy
    near = np.maximum(np.minimum(tx1, tx2), np.minimum(ty1, ty2))
    far = np.minimum(np.maximum(tx1, tx2), np.maximum(ty1, ty2))
    hit = (near <= far) & (far >= 0.0)
    return np.where(hit, np.maximum(near, 0.0), np.inf)


def ray_edge_distance(sin_ray: np.ndarray, ego_d: np.ndarray, half_width: np.ndarray):
    """[N, R] distance along each ray to the road edge it heads towards.
    sin_ray: [N, R]; ego_d, half_width: [N]. Rays parallel to the road never hit."""
    left = (half_width - ego_d)[:, None]
    right = (-half_width - ego_d)[:, None]
    safe = np.where(np.abs(sin_ray) < _TINY, _TINY, sin_ray)
    distance = np.where(sin_ray > 0, left / safe, right / safe)
    distance = np.where(np.abs(sin_ray) < _TINY, np.inf, distance)
    return np.maximum(distance, 0.0)


def scan(
    ego_s, ego_d, ego_heading, half_width, boxes, sensor_range, noise, max_range, angles
) -> np.ndarray:
    """[N, R] float32 lidar readings in [0, 1].

    ego_*, half_width, sensor_range: [N]; boxes: dict of [N, K] arrays s, d, heading,
    half_length, half_width, valid (the candidate objects, already the nearest ones);
    noise: [N, R] metres of sensor noise; angles: [R]."""
    directions = ego_heading[:, None] + angles[None, :]
    cos_ray, sin_ray = np.cos(directions), np.sin(directions)
    distance = ray_edge_distance(sin_ray, ego_d, half_width)
    if boxes["s"].shape[1] > 0:
        to_box = ray_box_distance(
            cos_ray, sin_ray, boxes["s"] - ego_s[:, None], boxes["d"] - ego_d[:, None],
            boxes["heading"], boxes["half_length"], boxes["half_width"],
        )
        to_box = np.where(boxes["valid"][:, None, :], to_box, np.inf)
        distance = np.minimum(distance, to_box.min(axis=2))
    distance = np.minimum(distance, sensor_range[:, None])
    distance = np.clip(distance + noise, 0.0, sensor_range[:, None])
    return (distance / max_range).astype(np.float32)
