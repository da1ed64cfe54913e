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
MISS = 1.0e30  # distance standing for "no hit" in float32 ray-box results


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


class RayScratch:
    """Reusable [N, K, R] buffers for `ray_box_distance`. Fresh temporaries of this size
    are fresh pages from the OS on every step (page faults cost more than the arithmetic),
    so the simulator keeps one scratch per shape."""

    def __init__(self, shape: tuple[int, int, int]):
        self.shape = shape
        self.floats = [np.empty(shape, np.float32) for _ in range(6)]
        self.flags = [np.empty(shape, bool) for _ in range(2)]


def ray_box_distance(
    cos_ray: np.ndarray,
    sin_ray: np.ndarray,
    box_ds: np.ndarray,
    box_dd: np.ndarray,
    box_heading: np.ndarray,
    half_length: np.ndarray,
    half_width: np.ndarray,
    scratch: RayScratch | None = None,
) -> np.ndarray:
    """[N, K, R] float32 distance along each ray from the origin to each box (MISS: no hit).

    cos_ray, sin_ray: [N, R] ray directions in road coordinates. Boxes: [N, K] centre offsets
    from the ray origin, heading, half sizes. Slab test in each box's own frame, in float32
    (centimetres are plenty for a sensor with centimetres of noise), laid out [N, K, R] so
    numpy's inner loops run over the R rays rather than a handful of boxes. With `scratch`
    the result lives in scratch storage: use it before the next call.
    """
    f32 = np.float32
    n, k = box_ds.shape
    shape = (n, k, cos_ray.shape[1])
    if scratch is None or scratch.shape != shape:
        scratch = RayScratch(shape)
    a, b, c, d, e, f = scratch.floats
    miss, behind = scratch.flags
    cb, sb = np.cos(box_heading), np.sin(box_heading)
    # ray origin in the box frame, and each slab's two planes relative to it: [N, K, 1]
    ox = -(box_ds * cb + box_dd * sb)
    oy = box_ds * sb - box_dd * cb
    column = lambda x: x.astype(f32)[:, :, None]
    lo_x, hi_x = column(-half_length - ox), column(half_length - ox)
    lo_y, hi_y = column(-half_width - oy), column(half_width - oy)
    cb, sb = column(cb), column(sb)
    cos_r, sin_r = cos_ray.astype(f32)[:, None, :], sin_ray.astype(f32)[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        # inverse ray direction in each box frame (1/0 = inf is fine): x in a, y in b
        np.multiply(cos_r, cb, out=a)
        a += np.multiply(sin_r, sb, out=b)
        np.reciprocal(a, out=a)
        np.multiply(sin_r, cb, out=b)
        b -= np.multiply(cos_r, sb, out=c)
        np.reciprocal(b, out=b)
        # slab entry/exit parameters: x planes in c, d; y planes in a, e
        np.multiply(lo_x, a, out=c)
        np.multiply(hi_x, a, out=d)
        np.multiply(lo_y, b, out=a)
        np.multiply(hi_y, b, out=e)
        # fmin/fmax skip the NaN of 0 * inf (a ray parallel to a slab plane through the
        # origin), so no NaN ever reaches an observation.
        near = np.fmax(np.fmin(c, d, out=b), np.fmin(a, e, out=f), out=b)
        far = np.fmin(np.fmax(c, d, out=c), np.fmax(a, e, out=a), out=c)
        np.greater(near, far, out=miss)
        miss |= np.less(far, 0.0, out=behind)
    np.maximum(near, f32(0.0), out=near)
    # Misses become MISS metres away; arithmetic instead of boolean-mask assignment or
    # np.where, which are several times slower on arrays of this size.
    return np.maximum(near, np.multiply(miss.view(np.uint8), f32(MISS), out=d), out=near)


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
    ego_s, ego_d, ego_heading, half_width, boxes, sensor_range, noise, max_range, angles,
    scratch: RayScratch | None = None,
) -> np.ndarray:
    """[N, R] float32 lidar readings in [0, 1].

    ego_*, half_width, sensor_range: [N]; boxes: dict of [N, K] arrays s, d, heading,
    half_length, half_width, valid (the candidate objects, already the nearest ones);
    noise: [N, R] metres of sensor noise; angles: [R]."""
    directions = ego_heading[:, None] + angles[None, :]
    cos_ray, sin_ray = np.cos(directions), np.sin(directions)
    distance = ray_edge_distance(sin_ray, ego_d, half_width)
    if boxes["s"].shape[1] > 0:
        # invalid boxes are moved far beyond any sensor range
        box_ds = np.where(boxes["valid"], boxes["s"] - ego_s[:, None], 1.0e6)
        to_box = ray_box_distance(
            cos_ray, sin_ray, box_ds, boxes["d"] - ego_d[:, None],
            boxes["heading"], boxes["half_length"], boxes["half_width"], scratch,
        )
        distance = np.minimum(distance, to_box.min(axis=1).astype(np.float64))
    distance = np.minimum(distance, sensor_range[:, None])
    distance = np.clip(distance + noise, 0.0, sensor_range[:, None])
    return (distance / max_range).astype(np.float32)
