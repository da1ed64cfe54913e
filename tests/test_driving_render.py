import numpy as np

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


def test_gif_writer_produces_a_well_formed_file(tmp_path):
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
