"""The `lidar` observation: R range rays from the ego centre, in road coordinates.

Rays are cast analytically against the two road edges (straight lines in road coordinates)
and against the oriented boxes of only the nearest few vehicles and pedestrians, so a scan is
O(R * K) per env with K fixed. Readings are distances with Gaussian sensor noise, capped at the
episode's visibility (`sensor_range`) and divided by `lidar_max_range`: 1 means nothing
within the maximum range, and poor visibility shows as a lower ceiling.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba.extending import register_jitable

NEAREST_VEHICLES = 8
NEAREST_PEDESTRIANS = 4
_TINY = 1e-12
MISS = 1.0e30  # distance standing for "no hit" in float32 ray-box results
# Margins that keep the ray-box candidate pairs a superset of the pairs that can hit, far
# above float32 rounding: radians around a box's angular radius, metres around its bounding
# circle for "the origin may be inside", metres beyond the reach for "may be within reach".
_ANGLE_MARGIN = 0.01
_NEAR_MARGIN = 0.5
_REACH_MARGIN = 1.0


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


def _box_frames(box_ds, box_dd, box_heading, half_length, half_width):
    """float32 (cos, sin) of each box heading and its slab planes (lo_x, hi_x, lo_y, hi_y)
    relative to the ray origin, in the box frame. Inputs: any matching shapes."""
    cb, sb = np.cos(box_heading), np.sin(box_heading)
    ox = -(box_ds * cb + box_dd * sb)
    oy = box_ds * sb - box_dd * cb
    planes = (cb, sb, -half_length - ox, half_length - ox, -half_width - oy, half_width - oy)
    return tuple(x.astype(np.float32) for x in planes)


def _slab_distance(cos_r, sin_r, frames, floats, flags):
    """float32 distance along rays (cos_r, sin_r) to boxes (`frames` from `_box_frames`),
    MISS for no hit; any shapes that broadcast to the shape of the six `floats` and two
    `flags` buffers, where the result lives."""
    f32 = np.float32
    cb, sb, lo_x, hi_x, lo_y, hi_y = frames
    a, b, c, d, e, f = floats
    miss, behind = flags
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
    the result lives in scratch storage: use it before the next call. Every ray against
    every box: `nearest_hits` is the same test on only the pairs that can meet.
    """
    n, k = box_ds.shape
    shape = (n, k, cos_ray.shape[1])
    if scratch is None or scratch.shape != shape:
        scratch = RayScratch(shape)
    frames = _box_frames(box_ds, box_dd, box_heading, half_length, half_width)
    columns = tuple(x[:, :, None] for x in frames)  # [N, K, 1]
    cos_r = cos_ray.astype(np.float32)[:, None, :]
    sin_r = sin_ray.astype(np.float32)[:, None, :]
    return _slab_distance(cos_r, sin_r, columns, scratch.floats, scratch.flags)


@numba.njit(cache=True, error_model="numpy")
def _fpick(a, b, smaller):
    """np.fmin (smaller) or np.fmax of two scalars: the other one where one is NaN."""
    if a != a:
        return b
    if b != b:
        return a
    return a if (a < b) == smaller else b


@numba.njit(cache=True, error_model="numpy")
def _slab_one(cos_r, sin_r, cb, sb, lo_x, hi_x, lo_y, hi_y):
    """`_slab_distance` of one ray and one box, float32 operation for operation."""
    one, zero = np.float32(1.0), np.float32(0.0)
    inv_x = one / (cos_r * cb + sin_r * sb)
    inv_y = one / (sin_r * cb - cos_r * sb)
    x_lo, x_hi, y_lo, y_hi = lo_x * inv_x, hi_x * inv_x, lo_y * inv_y, hi_y * inv_y
    near = _fpick(_fpick(x_lo, x_hi, True), _fpick(y_lo, y_hi, True), False)
    far = _fpick(_fpick(x_lo, x_hi, False), _fpick(y_lo, y_hi, False), True)
    near = max(near, zero)
    if near > far or far < zero:
        return max(near, np.float32(MISS))
    return near


@numba.njit(cache=True, error_model="numpy")
def _env_hits(cos_r, sin_r, heading, box_ds, box_dd, box_cos, box_sin, half_length,
              half_width, valid, reach, hits):
    """One env: min into hits [R] over the candidate (box, ray) pairs - the rays within each
    box's angular radius (plus a margin) as seen from the origin, or all rays when the
    origin is near or inside its bounding circle; boxes wholly beyond reach (a scalar)
    skipped. Rays cos_r, sin_r [R] float32; boxes [K], their frames as `_box_frames`."""
    r = cos_r.size
    step = 2.0 * np.pi / r
    for j in range(box_ds.size):
        radius = math.hypot(half_length[j], half_width[j])
        centre = math.hypot(box_ds[j], box_dd[j])
        if not valid[j] or centre - radius > reach + _REACH_MARGIN:
            continue
        first, count = 0, r
        if centre > radius + _NEAR_MARGIN:
            spread = math.asin(min(radius / centre, 1.0)) + _ANGLE_MARGIN
            bearing = math.atan2(box_dd[j], box_ds[j]) - heading
            first = math.ceil((bearing - spread) / step)
            count = min(max(math.floor((bearing + spread) / step) - first + 1, 0), r)
        cb, sb = box_cos[j], box_sin[j]
        ox = -(box_ds[j] * cb + box_dd[j] * sb)
        oy = box_ds[j] * sb - box_dd[j] * cb
        f32 = np.float32
        lo_x, hi_x = f32(-half_length[j] - ox), f32(half_length[j] - ox)
        lo_y, hi_y = f32(-half_width[j] - oy), f32(half_width[j] - oy)
        for t in range(count):
            ray = (first + t) % r
            hit = _slab_one(cos_r[ray], sin_r[ray], f32(cb), f32(sb), lo_x, hi_x, lo_y, hi_y)
            if hit < hits[ray]:
                hits[ray] = hit


@numba.njit(cache=True, error_model="numpy")
def _nearest_hits(cos_r, sin_r, heading, box_ds, box_dd, box_cos, box_sin, half_length,
                  half_width, valid, reach, hits):
    for i in range(cos_r.shape[0]):
        _env_hits(cos_r[i], sin_r[i], heading[i], box_ds[i], box_dd[i], box_cos[i],
                  box_sin[i], half_length[i], half_width[i], valid[i], reach[i], hits[i])


def nearest_hits(cos_ray, sin_ray, heading, box_ds, box_dd, box_heading, half_length,
                 half_width, valid, reach):
    """[N, R] float32 distance along each ray to the nearest box (MISS: none beyond `reach`).

    Rays: cos_ray, sin_ray [N, R] at `ray_angles(R)` turned by heading [N]. Boxes: [N, K]
    as in `ray_box_distance`, and valid [N, K]. Hits farther than reach [N] may read MISS
    instead. The minimum over boxes of `ray_box_distance` where that is within reach (the
    same float32 operations), but only the (box, ray) pairs whose bounding circle the ray
    can meet within reach are tested: a few per box instead of all R."""
    hits = np.full(cos_ray.shape, np.float32(MISS))
    _nearest_hits(cos_ray.astype(np.float32), sin_ray.astype(np.float32), heading, box_ds,
                  box_dd, np.cos(box_heading), np.sin(box_heading), half_length, half_width,
                  valid, reach, hits)
    return hits


def ray_edge_distance(sin_ray: np.ndarray, ego_d: np.ndarray, half_width: np.ndarray):
    """[N, R] distance along each ray to the road edge it heads towards.
    sin_ray: [N, R]; ego_d, half_width: [N]. Rays parallel to the road never hit."""
    distance = np.empty(sin_ray.shape)
    _edge_distances(sin_ray, ego_d, half_width, distance)
    return distance


@register_jitable
def _edge_distance(sin_r, left, right):
    """Distance along one ray to the road edge it heads towards (left/right: the edges'
    lateral offsets from the ego)."""
    if abs(sin_r) < _TINY:
        return np.inf
    return max((left if sin_r > 0 else right) / sin_r, 0.0)


@numba.njit(cache=True, error_model="numpy")
def _edge_distances(sin_ray, ego_d, half_width, out):
    for i in range(sin_ray.shape[0]):
        for ray in range(sin_ray.shape[1]):
            out[i, ray] = _edge_distance(sin_ray[i, ray], half_width[i] - ego_d[i],
                                         -half_width[i] - ego_d[i])


@numba.njit(cache=True, error_model="numpy")
def _scan_env(i, cos_ray, sin_ray, heading, ego_d, half_width, box_ds, box_dd, box_cos,
              box_sin, half_length, box_half_width, valid, sensor_range, noise, max_range,
              hits, cos32, sin32, out):
    """Readings out[i] [R] of env i against its candidate boxes (box_* [K] of that env,
    box_ds and box_dd their offsets from the ego); hits, cos32, sin32: [R] scratch."""
    r = cos_ray.shape[1]
    hits[:] = np.float32(MISS)
    for ray in range(r):
        cos32[ray], sin32[ray] = np.float32(cos_ray[i, ray]), np.float32(sin_ray[i, ray])
    _env_hits(cos32, sin32, heading[i], box_ds, box_dd, box_cos, box_sin, half_length,
              box_half_width, valid, sensor_range[i], hits)
    left, right = half_width[i] - ego_d[i], -half_width[i] - ego_d[i]
    for ray in range(r):
        distance = min(_edge_distance(sin_ray[i, ray], left, right), np.float64(hits[ray]))
        distance = min(distance, sensor_range[i])
        distance = min(max(distance + noise[i, ray], 0.0), sensor_range[i])
        out[i, ray] = np.float32(distance / max_range)


@numba.njit(cache=True, error_model="numpy")
def _scan(cos_ray, sin_ray, heading, ego_s, ego_d, half_width, box_s, box_d, box_cos,
          box_sin, half_length, box_half_width, valid, sensor_range, noise, max_range, out):
    """Kernel of `scan`: per env, the nearest box hits, then each ray's reading."""
    r = cos_ray.shape[1]
    hits = np.empty(r, np.float32)
    cos32, sin32 = np.empty(r, np.float32), np.empty(r, np.float32)
    for i in range(cos_ray.shape[0]):
        _scan_env(i, cos_ray, sin_ray, heading, ego_d, half_width, box_s[i] - ego_s[i],
                  box_d[i] - ego_d[i], box_cos[i], box_sin[i], half_length[i],
                  box_half_width[i], valid[i],
                  sensor_range, noise, max_range, hits, cos32, sin32, out)


def scan(ego_s, ego_d, ego_heading, half_width, boxes, sensor_range, noise, max_range):
    """[N, R] float32 lidar readings in [0, 1] of rays at `ray_angles(R)`.

    ego_*, half_width, sensor_range: [N]; boxes: dict of [N, K] arrays s, d, heading,
    half_length, half_width, valid (the candidate objects, already the nearest ones);
    noise: [N, R] metres of sensor noise. Distances to road edges and boxes, capped at the
    sensor range, plus noise, clipped to [0, sensor range], over max_range; the ray and box
    directions' cos/sin come from numpy, the rest is one compiled loop."""
    cos_ray, sin_ray = _ray_directions(ego_heading, noise.shape[1])
    out = np.empty(noise.shape, np.float32)
    _scan(cos_ray, sin_ray, ego_heading, ego_s, ego_d, half_width,
          boxes["s"], boxes["d"], np.cos(boxes["heading"]), np.sin(boxes["heading"]),
          boxes["half_length"], boxes["half_width"], boxes["valid"], sensor_range, noise,
          float(max_range), out)
    return out


def _ray_directions(ego_heading, num_rays):
    """cos and sin [N, R] of the ray directions in road coordinates: each ray's fixed
    direction relative to the ego, rotated by the heading (2 N trigonometric calls instead of
    2 N R; the angle-sum formulas round within a few ulps of cos/sin of the summed angle)."""
    cos_ray, sin_ray = _cached_ray_cos_sin(num_rays)
    cos_ray_road = np.empty((ego_heading.size, num_rays))
    sin_ray_road = np.empty((ego_heading.size, num_rays))
    _rotate(np.cos(ego_heading), np.sin(ego_heading), cos_ray, sin_ray, cos_ray_road,
            sin_ray_road)
    return cos_ray_road, sin_ray_road


@functools.lru_cache(maxsize=8)
def _cached_ray_cos_sin(num_rays: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin [R] of `ray_angles` (shared, read-only)."""
    angles = ray_angles(num_rays)
    cos_sin = np.cos(angles), np.sin(angles)
    for array in cos_sin:
        array.flags.writeable = False
    return cos_sin


@numba.njit(cache=True)
def _rotate(cos_heading, sin_heading, cos_ray, sin_ray, cos_out, sin_out):
    """cos_out, sin_out [N, R]: cos and sin of heading [N] + ray angle [R], from the cos and
    sin of each (multiplies and adds only, so every env rounds the same whatever N is)."""
    for i in range(cos_out.shape[0]):
        ch, sh = cos_heading[i], sin_heading[i]
        for r in range(cos_out.shape[1]):
            cos_out[i, r] = ch * cos_ray[r] - sh * sin_ray[r]
            sin_out[i, r] = sh * cos_ray[r] + ch * sin_ray[r]


@numba.njit(cache=True)
def _pick_nearest(s, d, valid, ego_s, ego_d, k, distance, picked):
    """The first min(k, #valid) entries of picked: ids of the valid objects nearest the ego
    (s, d, valid: [M] of one env), nearest first, ties to the lower id; returns how many.
    With k >= M every valid object (the order does not matter to a scan's minimum).
    distance, picked: [>= M] scratch."""
    m = s.size
    count = 0
    if k >= m:
        for j in range(m):
            if valid[j]:
                picked[count] = j
                count += 1
        return count
    for j in range(m):
        ds, dd = s[j] - ego_s, d[j] - ego_d
        distance[j] = ds * ds + dd * dd if valid[j] else np.inf
    for _ in range(k):
        best = -1
        for j in range(m):
            if distance[j] < np.inf and (best < 0 or distance[j] < distance[best]):
                best = j
        if best < 0:
            break
        picked[count] = best
        count += 1
        distance[best] = np.inf
    return count


@numba.njit(cache=True, error_model="numpy")
def _scan_nearest(cos_ray, sin_ray, heading, ego_s, ego_d, half_width, veh, veh_valid, ped_s,
                  ped_d, ped_half, sensor_range, noise, max_range, out):
    """Kernel of `scan_nearest`: per env, gather the NEAREST_VEHICLES vehicles and the
    NEAREST_PEDESTRIANS pedestrians nearest the ego into candidate boxes, then scan them.
    veh: [6, N, M] s, d, cos and sin of the heading, half length, half width; veh_valid
    [N, M]; ped_s, ped_d [N, P]; the rest as `_scan`."""
    n, r = cos_ray.shape
    m, p = veh.shape[2], ped_s.shape[1]
    k = NEAREST_VEHICLES + NEAREST_PEDESTRIANS
    # offsets from the ego, cos and sin of the heading, half length, half width
    box = np.empty((6, k))
    valid = np.ones(k, np.bool_)
    ped_valid = np.ones(p, np.bool_)
    distance, picked = np.empty(max(m, p, 1)), np.empty(max(m, p, 1), np.int64)
    hits = np.empty(r, np.float32)
    cos32, sin32 = np.empty(r, np.float32), np.empty(r, np.float32)
    for i in range(n):
        count = _pick_nearest(veh[0, i], veh[1, i], veh_valid[i], ego_s[i], ego_d[i],
                              NEAREST_VEHICLES, distance, picked)
        for c in range(count):
            j = picked[c]
            box[0, c], box[1, c] = veh[0, i, j] - ego_s[i], veh[1, i, j] - ego_d[i]
            for f in range(2, 6):
                box[f, c] = veh[f, i, j]
        people = _pick_nearest(ped_s[i], ped_d[i], ped_valid, ego_s[i], ego_d[i],
                               NEAREST_PEDESTRIANS, distance, picked)
        for c in range(count, count + people):
            j = picked[c - count]
            box[0, c], box[1, c] = ped_s[i, j] - ego_s[i], ped_d[i, j] - ego_d[i]
            box[2, c], box[3, c] = 1.0, 0.0  # heading 0
            box[4, c] = box[5, c] = ped_half
        used = count + people
        _scan_env(i, cos_ray, sin_ray, heading, ego_d, half_width, box[0, :used],
                  box[1, :used], box[2, :used], box[3, :used], box[4, :used], box[5, :used],
                  valid[:used], sensor_range, noise, max_range, hits, cos32, sin32, out)


def scan_nearest(ego_s, ego_d, ego_heading, half_width, vehicles, vehicle_valid, ped_s, ped_d,
                 ped_half, sensor_range, noise, max_range):
    """`scan` of the NEAREST_VEHICLES valid vehicles and NEAREST_PEDESTRIANS pedestrians
    nearest the ego (ties to the lower column), selected inside the compiled loop.

    vehicles: [6, N, M] float64 s, d, cos and sin of the heading, half length, half width;
    vehicle_valid: [N, M] bool; ped_s, ped_d: [N, P] (square, half size ped_half);
    the rest as `scan`. Returns [N, R] float32."""
    cos_ray, sin_ray = _ray_directions(ego_heading, noise.shape[1])
    out = np.empty(noise.shape, np.float32)
    _scan_nearest(cos_ray, sin_ray, ego_heading, ego_s, ego_d, half_width, vehicles,
                  vehicle_valid, ped_s, ped_d, float(ped_half), sensor_range, noise,
                  float(max_range), out)
    return out
