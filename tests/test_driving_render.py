import sys

import numpy as np
import pytest
from PIL import Image

from jaximpala.envs.driving import render
from jaximpala.envs.driving.env import DrivingEnv


def test_frame_colours_show_road_ego_and_traffic():
    env = DrivingEnv(render_mode="rgb_array", traffic_density=1.0)
    env.reset(seed=2)
    frame = env.render()
    assert frame.shape == (render.FRAME_SIZE, render.FRAME_SIZE, 3) and frame.dtype == np.uint8
    colours = {tuple(c) for c in frame.reshape(-1, 3)}
    assert {tuple(render._EGO), tuple(render._ROUTE), tuple(render._GRASS)} <= colours
    centre = frame[render.FRAME_SIZE * 3 // 4 - 1, render.FRAME_SIZE // 2]
    assert tuple(centre) == tuple(render._EGO)


@pytest.mark.parametrize("pillow", [True, False])
def test_gif_writer_produces_a_well_formed_file(tmp_path, monkeypatch, pillow):
    if not pillow:  # the numpy-only writer
        monkeypatch.setitem(sys.modules, "PIL", None)
    frames = [np.full((8, 10, 3), value, np.uint8) for value in (0, 128, 255)]
    path = tmp_path / "clip.gif"
    render.write_gif(str(path), frames, fps=5)
    data = path.read_bytes()
    assert data[:6] == b"GIF89a" and data[-1:] == b";"
    assert int.from_bytes(data[6:8], "little") == 10 and int.from_bytes(data[8:10], "little") == 8
    assert data.count(b"\x21\xf9\x04") == 3  # one graphic control block per frame


def test_lzw_stream_decodes_back_to_the_pixels():
    symbols = np.random.default_rng(0).integers(0, 256, 1000)
    bits = np.unpackbits(np.frombuffer(render._lzw_uncompressed(symbols), np.uint8),
                         bitorder="little")
    codes = (bits[: len(bits) // 9 * 9].reshape(-1, 9) * (1 << np.arange(9))).sum(1)
    literals = [c for c in codes.tolist() if c < 256]
    assert literals == symbols.tolist()
    assert codes[0] == 256 and 257 in codes.tolist()


def test_compressed_gif_decodes_to_the_quantised_frames(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (16, 12, 3), dtype=np.uint8) for _ in range(3)]
    path = tmp_path / "clip.gif"
    render.write_gif(str(path), frames)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
        for k, frame in enumerate(frames):
            gif.seek(k)
            index = render._palette_index(frame)  # 3-3-2 bits: r, g in 0..7, b in 0..3
            expected = np.stack([index // 32 * 255 // 7, index // 4 % 8 * 255 // 7,
                                 index % 4 * 255 // 3], axis=-1)
            assert (np.asarray(gif.convert("RGB")) == expected).all()
