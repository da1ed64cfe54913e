"""The `camera` observation: an ego-centred bird's-eye raster in road coordinates.

Rows run along the road (forward is up, the ego three quarters down the image), columns run
across it (left is left), `meters_per_pixel` apart. Because the raster lives in road (Frenet)
coordinates, bends appear straightened: curvature ahead is in the `state` vector instead. In
exchange, every road layer is an outer product of a per-row and a per-column mask, so a frame
costs a few broadcasts over uint8 arrays instead of per-pixel geometry.

Channels (uint8, 0 or 255): drivable area, lane markings (solid edges, dashed or solid
dividers, zebra crossings), vehicles (ego included, drawn with its heading), pedestrians, and
the route (the drivable area up to the goal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHANNELS = ("drivable", "markings", "vehicles", "pedestrians", "route")
DASH_PERIOD = 6.0  # metres: 3 m of paint, 3 m of gap
ZEBRA_PERIOD = 1.0
CROSSWALK_HALF_WIDTH = 2.0


@dataclass(frozen=True)
class CameraGeometry:
    """Pixel grid of the camera: `size` x `size` pixels, `meters_per_pixel` apart."""

    size: int
    meters_per_pixel: float

    @property
    def ego_row(self) -> int:
        return (3 * self.size) // 4

    def row_offsets(self) -> np.ndarray:
        """[H] metres along the road from the ego to each row's centre (positive ahead)."""
        rows = np.arange(self.size)
        return (self.ego_row - 1 - rows + 0.5) * self.meters_per_pixel

    def column_offsets(self) -> np.ndarray:
        """[W] metres across the road from the ego to each column's centre (positive left)."""
        columns = np.arange(self.size)
        return (self.size // 2 - 1 - columns + 0.5) * self.meters_per_pixel

    def row_of(self, ds: np.ndarray) -> np.ndarray:
        """Pixel row (int64, may fall outside the image) of offsets ds ahead of the ego."""
        return self.ego_row - 1 - np.floor(ds / self.meters_per_pixel).astype(np.int64)

    def column_of(self, dd: np.ndarray) -> np.ndarray:
        """Pixel column (int64, may fall outside the image) of offsets dd left of the ego."""
        return self.size // 2 - 1 - np.floor(dd / self.meters_per_pixel).astype(np.int64)


@dataclass
class Scene:
    """What the camera sees. Ego fields [N]; traffic [N, M]; pedestrians [N, P];
    crosswalk_s [N, C]; solid_rows [N, H] (dividers solid at each row)."""

    ego_s: np.ndarray
    ego_d: np.ndarray
    ego_heading: np.ndarray
    ego_half: tuple[float, float]
    half_width: np.ndarray
    num_lanes: np.ndarray
    lane_width: np.ndarray
    goal_s: np.ndarray
    solid_rows: np.ndarray
    crosswalk_s: np.ndarray
    traffic_s: np.ndarray
    traffic_d: np.ndarray
    traffic_half_length: np.ndarray
    traffic_half_width: np.ndarray
    traffic_active: np.ndarray
    ped_s: np.ndarray
    ped_d: np.ndarray


class CodeScratch:
    """Reusable [N, H, W] uint8 buffers for `rasterise` (fresh ones cost page faults)."""

    def __init__(self, shape: tuple[int, int, int]):
        self.shape = shape
        self.code = np.empty(shape, np.uint8)
        self.term = np.empty(shape, np.uint8)


def rasterise(
    scene: Scene,
    geometry: CameraGeometry,
    channels: int = len(CHANNELS),
    ego_channel: int = 2,
    scratch: CodeScratch | None = None,
) -> np.ndarray:
    """A fresh [N, H, W, channels] uint8 image of the scene (5 <= channels <= 8), 0 or 255.
    The ego goes into `ego_channel` (the vehicles channel unless a renderer wants it apart).

    Every pixel is first one byte whose bit c says "channel c is on"; a lookup table then
    expands the bytes into the channels-last image in a single pass (writing the channels
    one by one costs a strided pass each, and dominated the step).
    """
    rows_ds = geometry.row_offsets()
    cols_dd = geometry.column_offsets()
    column_d = scene.ego_d[:, None] + cols_dd[None, :]  # [N, W] road offset of each column
    row_s = scene.ego_s[:, None] + rows_ds[None, :]  # [N, H] arc length of each row
    drivable = np.abs(column_d) <= scene.half_width[:, None]  # [N, W]
    edges, dividers = _line_columns(scene, geometry)
    dashes = (np.mod(row_s, DASH_PERIOD) < 0.5 * DASH_PERIOD) | scene.solid_rows  # [N, H]
    crossing = (
        np.abs(row_s[:, :, None] - scene.crosswalk_s[:, None, :]) < CROSSWALK_HALF_WIDTH
    ).any(axis=2)  # [N, H]
    zebra = drivable & (np.mod(column_d, ZEBRA_PERIOD) < 0.5 * ZEBRA_PERIOD)  # [N, W]
    route = row_s <= scene.goal_s[:, None]  # [N, H]

    shape = (scene.ego_s.shape[0], geometry.size, geometry.size)
    if scratch is None or scratch.shape != shape:
        scratch = CodeScratch(shape)
    code, term = scratch.code, scratch.term
    bit = lambda mask, channel: (mask.astype(np.uint8) << channel)[:, None, :]  # [N, 1, W]
    every_row = lambda mask: (mask.astype(np.uint8) * np.uint8(255))[:, :, None]  # [N, H, 1]
    np.bitwise_and(bit(dividers, 1), every_row(dashes), out=code)
    code |= bit(drivable, 0) | bit(edges, 1)
    code |= np.bitwise_and(bit(zebra, 1), every_row(crossing), out=term)
    code |= np.bitwise_and(bit(drivable, 4), every_row(route), out=term)
    _draw_traffic(scene, geometry, code)
    _draw_ego(scene, geometry, code, ego_channel)
    _draw_pedestrians(scene, geometry, code)
    return np.take(_expansion_table(channels), code, axis=0)


def _expansion_table(channels: int) -> np.ndarray:
    """[256, channels] uint8: row b holds 255 in channel c where bit c of b is set."""
    codes = np.arange(256)[:, None]
    return (((codes >> np.arange(channels)[None, :]) & 1) * 255).astype(np.uint8)


def _line_columns(scene: Scene, geometry: CameraGeometry) -> tuple[np.ndarray, np.ndarray]:
    """[N, W] bool columns holding a road edge, and a lane divider."""
    n, size = scene.ego_s.shape[0], geometry.size
    k = np.arange(5)[None, :]  # up to 4 lanes -> 5 lines
    line_d = -scene.half_width[:, None] + k * scene.lane_width[:, None]  # [N, 5]
    columns = geometry.column_of(line_d - scene.ego_d[:, None])
    inside = (columns >= 0) & (columns < size) & (k <= scene.num_lanes[:, None])
    is_edge = (k == 0) | (k == scene.num_lanes[:, None])
    # Out-of-image lines go to a spare column that is sliced off.
    columns = np.where(inside, columns, size)
    rows = np.broadcast_to(np.arange(n)[:, None], columns.shape)
    edges = np.zeros((n, size + 1), bool)
    dividers = np.zeros((n, size + 1), bool)
    edges[rows[is_edge], columns[is_edge]] = True
    dividers[rows[~is_edge], columns[~is_edge]] = True
    return edges[:, :size], dividers[:, :size]


def _set_bit(code, env, rows, cols, channel):
    """Turn on `channel` at pixels (env, rows, cols) ([K] each) of code [N, H, W]."""
    code[env, rows, cols] = code[env, rows, cols] | np.uint8(1 << channel)


def _stamp(code, env, row0, row1, col0, col1, channel, max_rows, max_cols):
    """Fill integer boxes [row0, row1] x [col0, col1] (inclusive; [K] each, env [K]) of
    `channel`, clipped to the image, with at most max_rows x max_cols pixels per box."""
    size = code.shape[1]
    row0, row1 = np.maximum(row0, 0), np.minimum(row1, size - 1)
    col0, col1 = np.maximum(col0, 0), np.minimum(col1, size - 1)
    rows = row0[:, None, None] + np.arange(max_rows)[None, :, None]
    cols = col0[:, None, None] + np.arange(max_cols)[None, None, :]
    keep = (rows <= row1[:, None, None]) & (cols <= col1[:, None, None])
    pixels = ((env[:, None, None] * size + rows) * size + cols)[keep]
    flat = code.reshape(-1)
    flat[pixels] = flat[pixels] | np.uint8(1 << channel)


def _draw_traffic(scene: Scene, geometry: CameraGeometry, code: np.ndarray) -> None:
    """Traffic into code [N, H, W] as road-aligned boxes (lane-change yaw is a few degrees:
    not drawn)."""
    ds = scene.traffic_s - scene.ego_s[:, None]
    dd = scene.traffic_d - scene.ego_d[:, None]
    res = geometry.meters_per_pixel
    ahead, behind = geometry.ego_row * res, (geometry.size - geometry.ego_row) * res
    margin = scene.traffic_half_length
    visible = scene.traffic_active & (ds < ahead + margin) & (ds > -behind - margin) & (
        np.abs(dd) < 0.5 * geometry.size * res + scene.traffic_half_width)
    env, slot = np.nonzero(visible)
    if env.size == 0:
        return
    ds, dd = ds[env, slot], dd[env, slot]
    hl, hw = scene.traffic_half_length[env, slot], scene.traffic_half_width[env, slot]
    max_rows = int(np.ceil(2.0 * hl.max() / res)) + 2
    max_cols = int(np.ceil(2.0 * hw.max() / res)) + 2
    _stamp(code, env, geometry.row_of(ds + hl), geometry.row_of(ds - hl),
           geometry.column_of(dd + hw), geometry.column_of(dd - hw), 2, max_rows, max_cols)


def _draw_ego(scene: Scene, geometry: CameraGeometry, code: np.ndarray, channel: int) -> None:
    """The ego into code [N, H, W] as its rotated footprint, sampled at half-pixel spacing."""
    res = geometry.meters_per_pixel
    half_length, half_width = scene.ego_half
    along = np.linspace(-half_length, half_length, int(np.ceil(4 * half_length / res)) + 1)
    across = np.linspace(-half_width, half_width, int(np.ceil(4 * half_width / res)) + 1)
    a, c = np.meshgrid(along, across, indexing="ij")
    a, c = a.ravel()[None, :], c.ravel()[None, :]
    cos, sin = np.cos(scene.ego_heading)[:, None], np.sin(scene.ego_heading)[:, None]
    rows = geometry.row_of(a * cos - c * sin)
    cols = geometry.column_of(a * sin + c * cos)
    size = geometry.size
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    pixels = ((np.arange(rows.shape[0])[:, None] * size + rows) * size + cols)[inside]
    flat = code.reshape(-1)
    flat[pixels] = flat[pixels] | np.uint8(1 << channel)


def _draw_pedestrians(scene: Scene, geometry: CameraGeometry, code: np.ndarray) -> None:
    """Pedestrians into code [N, H, W], one pixel each (they are smaller than a pixel)."""
    rows = geometry.row_of(scene.ped_s - scene.ego_s[:, None])
    cols = geometry.column_of(scene.ped_d - scene.ego_d[:, None])
    size = geometry.size
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    env, slot = np.nonzero(inside)
    _set_bit(code, env, rows[env, slot], cols[env, slot], 3)
