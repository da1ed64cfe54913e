"""Render an evaluation episode of a run as a GIF: `jaximpala render --run DIR`.

The trained agent drives one held-out episode as the run's evaluation does (sampled
actions, or the mode with `eval.greedy`; the first evaluation seed unless `--seed` says
otherwise). Each frame is the env's top-down view with a side panel showing
the agent's controls, the step's reward terms and the return so far.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

PANEL_WIDTH = 200
LINE_HEIGHT = 12  # pixels per panel line


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="a run directory (newest checkpoint)")
    source.add_argument("--checkpoint", metavar="DIR",
                        help="one checkpoint, RUN_DIR/checkpoints/<update>")
    parser.add_argument("--seed", type=int, default=None,
                        help="scenario seed (default: the run's eval.seed)")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=2, help="keep every k-th frame")
    parser.add_argument("--out", default=None,
                        help="output GIF (default: RUN_DIR/episode-<update>-seed<seed>.gif)")


def run(args) -> int:
    from jaximpala.evaluation import restore_agent, run_dir_of

    try:
        run_dir, step = run_dir_of(args)
        config, agent, params, step = restore_agent(run_dir, step)
        seed = config.eval.seed if args.seed is None else args.seed
        out, frames, summary = write_episode_gif(
            config, agent, params, step=step, seed=seed, max_steps=args.max_steps,
            every=args.every, out=args.out and pathlib.Path(args.out), run_dir=run_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"jaximpala render: error: {error}", file=sys.stderr)
        return 2
    print(f"{out}: {frames} frames, {summary}")
    return 0


def write_episode_gif(config, agent, params, *, step: int, seed: int, max_steps: int,
                      every: int, run_dir: pathlib.Path, out: pathlib.Path | None = None
                      ) -> tuple[pathlib.Path, int, str]:
    """Renders an evaluation episode to `out` (default `run_dir/episode-<step>-seed<seed>.gif`);
    returns the path, the frame count and the outcome line."""
    from jaximpala.envs.driving.render import write_gif

    out = out or pathlib.Path(run_dir) / f"episode-{step}-seed{seed}.gif"
    frames, summary = render_episode(config, agent, params, seed=seed, max_steps=max_steps,
                                     every=every)
    write_gif(str(out), frames, fps=max(1, round(10 / every)))
    return out, len(frames), summary


def render_episode(config, agent, params, *, seed: int, max_steps: int, every: int
                   ) -> tuple[list[np.ndarray], str]:
    """Frames `[H, W + PANEL_WIDTH, 3]` of one evaluation episode and a one-line outcome."""
    import jax

    from jaximpala.evaluation import agent_policy
    from jaximpala.inline import make_vector_env

    env = make_vector_env(config.env.id, 1, {**config.env.kwargs, "render_mode": "rgb_array"})
    policy = agent_policy(agent, params, greedy=config.eval.greedy,
                          key=jax.random.key(seed))
    try:
        obs, _ = env.reset(seed=seed)
        frames, total, start = [], 0.0, np.ones(1, bool)
        for t in range(max_steps):
            action = policy(obs, start)
            image = _first_frame(env.render())
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward[0])
            if t % every == 0:
                frames.append(overlay(image, t, action, info, float(reward[0]), total))
            start = np.zeros(1, bool)
            if terminated[0] or truncated[0]:
                break
    finally:
        env.close()
    outcome = ("goal" if info.get("goal_reached", [False])[0] else "collision" if info.get(
        "collision", [False])[0] else "off-road" if info.get("offroad", [False])[0] else
        "terminated" if terminated[0] else "time limit" if truncated[0] else "cut")
    return frames, f"{t + 1} steps, return {total:.2f}, {outcome}"


def _first_frame(rendered) -> np.ndarray:
    if rendered is None:
        raise ValueError("the env returned no frame for render_mode='rgb_array'")
    frame = np.asarray(rendered[0] if isinstance(rendered, tuple | list) else rendered)
    return frame[0] if frame.ndim == 4 else frame


def overlay(image: np.ndarray, step: int, action, info: dict, reward: float,
            total: float) -> np.ndarray:
    """`image` with a panel on its right: controls, this step's reward terms, the return."""
    from PIL import Image, ImageDraw

    lines = [f"step {step}", f"return {total:8.2f}", f"reward {reward:8.3f}", ""]
    lines += [f"{name} {value}" for name, value in _controls(action)]
    terms = {key.removeprefix("reward/"): float(np.asarray(v)[0])
             for key, v in sorted(info.items()) if key.startswith("reward/")}
    width = max(map(len, terms), default=0)
    lines += [""] + [f"{name:<{width}} {value:+.3f}" for name, value in terms.items()]
    # Every line must fit: the panel grows with the number of reward terms.
    height = max(image.shape[0], 256, 4 + LINE_HEIGHT * len(lines))
    canvas = Image.new("RGB", (image.shape[1] + PANEL_WIDTH, height), (20, 20, 24))
    canvas.paste(Image.fromarray(np.ascontiguousarray(image[..., :3])), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for row, text in enumerate(lines):
        draw.text((image.shape[1] + 6, 4 + LINE_HEIGHT * row), text, fill=(230, 230, 230))
    return np.asarray(canvas)


def _controls(action) -> list[tuple[str, str]]:
    if isinstance(action, dict) and "continuous" in action:  # the driving env
        steer, *pedals = np.asarray(action["continuous"])[0]
        discrete = np.asarray(action["discrete"])[0]
        gear, signal = discrete if discrete.size == 2 else (2, discrete[0])  # automatic: drive
        pedal_lines = ([("throttle", f"{pedals[0]:.2f}"), ("brake", f"{pedals[1]:.2f}")]
                       if len(pedals) == 2 else [("pedal", f"{pedals[0]:+.2f}")])
        return [("steer", f"{steer:+.2f}"), *pedal_lines, ("gear", "RND"[int(gear)]),
                ("signal", ["off", "left", "right"][int(signal)])]
    return [("action", np.array2string(np.asarray(action)[0], precision=2))]
