"""Human-facing colour frames (`render_mode="rgb_array"`) and animated GIF writing.

Frames reuse the camera rasteriser at a larger size and finer resolution, then colour its
layers: grass, grey road, white paint, the route tinted blue, traffic red, the ego yellow and
pedestrians magenta. Like the camera, the view is in road coordinates (bends straightened).
"""

from __future__ import annotations

import numpy as np

from jaximpala.envs.driving import camera as camera_mod

FRAME_SIZE = 256
FRAME_METERS_PER_PIXEL = 0.25
_GRASS = np.array([70, 120, 60], np.uint8)
_ROAD = np.array([95, 95, 100], np.uint8)
_ROUTE = np.array([80, 95, 140], np.uint8)
_PAINT = np.array([235, 235, 235], np.uint8)
_TRAFFIC = np.array([200, 50, 40], np.uint8)
_PEDESTRIAN = np.array([230, 40, 220], np.uint8)
_EGO = np.array([250, 210, 40], np.uint8)


def frame(sim) -> np.ndarray:
    """[N, FRAME_SIZE, FRAME_SIZE, 3] uint8 colour top-down views of a `DrivingSim`."""
    geometry = camera_mod.CameraGeometry(FRAME_SIZE, FRAME_METERS_PER_PIXEL)
    layers = camera_mod.rasterise(sim._scene_for(geometry), geometry, channels=6, ego_channel=5)
    on = layers > 0
    image = np.broadcast_to(_GRASS, (*layers.shape[:3], 3)).copy()
    for channel, colour in ((0, _ROAD), (4, _ROUTE), (1, _PAINT), (2, _TRAFFIC),
                            (3, _PEDESTRIAN), (5, _EGO)):
        image[on[..., channel]] = colour
    return image


def write_gif(path: str, frames: list[np.ndarray], fps: int = 10) -> None:
    """Write [H, W, 3] uint8 frames as an animated GIF.

    Colours are quantised to a fixed 3-3-2 bit palette (256 colours). With Pillow installed
    (matplotlib brings it) the frames are LZW-compressed, about 20x smaller for these flat
    top-down images; without it, only numpy is needed and the LZW stream is written
    uncompressed (a clear code every 254 symbols keeps 9-bit codes): large files that any
    GIF reader plays.
    """
    if not frames:
        raise ValueError("write_gif needs at least one frame")
    height, width = frames[0].shape[:2]
    if any(image.shape[:2] != (height, width) for image in frames):
        raise ValueError("all GIF frames must have the same size")
    levels_rg, levels_b = np.arange(8) * 255 // 7, np.arange(4) * 255 // 3
    palette = np.stack(np.meshgrid(levels_rg, levels_rg, levels_b, indexing="ij"), -1)
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        images = []
        for image in frames:
            indexed = Image.fromarray(_palette_index(image).astype(np.uint8), mode="P")
            indexed.putpalette(palette.reshape(-1).astype(np.uint8).tobytes())
            images.append(indexed)
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(1, round(100 / fps)) * 10, loop=0, optimize=False)
        return
    with open(path, "wb") as out:
        out.write(b"GIF89a" + _u16(width) + _u16(height) + bytes([0xF7, 0, 0]))
        out.write(palette.reshape(-1, 3).astype(np.uint8).tobytes())
        out.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")  # loop forever
        delay = max(1, round(100 / fps))
        for image in frames:
            index = _palette_index(image)
            out.write(b"\x21\xf9\x04\x04" + _u16(delay) + b"\x00\x00")
            out.write(b"\x2c" + _u16(0) + _u16(0) + _u16(width) + _u16(height) + b"\x00")
            out.write(b"\x08" + _sub_blocks(_lzw_uncompressed(index.ravel())) + b"\x00")
        out.write(b"\x3b")


def _palette_index(image: np.ndarray) -> np.ndarray:
    """[H, W] index of each pixel's nearest colour in the 3-3-2 bit palette."""
    rgb = image[..., :3].astype(np.uint16)
    index = ((rgb[..., 0] * 7 + 127) // 255) * 32 + ((rgb[..., 1] * 7 + 127) // 255) * 4
    return index + (rgb[..., 2] * 3 + 127) // 255


def _u16(value: int) -> bytes:
    return int(value).to_bytes(2, "little")


def _lzw_uncompressed(symbols: np.ndarray) -> bytes:
    """9-bit LZW codes: literal symbols with a clear code (256) every 254 of them, so the
    decoder's table never grows past 9-bit codes; ends with the end code (257)."""
    clear, end, chunk = 256, 257, 254
    pieces = []
    for start in range(0, symbols.size, chunk):
        pieces.append([clear])
        pieces.append(symbols[start:start + chunk].astype(np.int64))
    codes = np.concatenate([np.asarray(p, np.int64) for p in pieces] + [np.array([end])])
    bits = ((codes[:, None] >> np.arange(9)[None, :]) & 1).astype(np.uint8).ravel()
    return np.packbits(bits, bitorder="little").tobytes()


def _sub_blocks(data: bytes) -> bytes:
    blocks = [bytes([len(data[i:i + 255])]) + data[i:i + 255] for i in range(0, len(data), 255)]
    return b"".join(blocks)
