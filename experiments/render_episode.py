"""Write a GIF of one episode driven by the scripted baseline driver.

    python experiments/render_episode.py --preset easy --seed 0 --out episode.gif
"""

import argparse
import sys

import numpy as np

from jaximpala.envs.driving.baseline import BaselineDriver
from jaximpala.envs.driving.env import DrivingEnv
from jaximpala.envs.driving.render import write_gif


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=["easy", "default", "hard"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=2, help="keep every k-th frame")
    parser.add_argument("--out", default="episode.gif")
    args = parser.parse_args(argv)

    env = DrivingEnv(preset=args.preset, render_mode="rgb_array")
    driver = BaselineDriver(env.config, 1)
    obs, _ = env.reset(seed=args.seed)
    frames, total = [env.render()], 0.0
    for step in range(args.max_steps):
        action = driver.act({k: v[None] for k, v in obs.items()})
        obs, reward, terminated, truncated, info = env.step({k: v[0] for k, v in action.items()})
        total += reward
        if step % args.every == 0:
            frames.append(env.render())
        if terminated or truncated:
            break
    write_gif(args.out, frames, fps=max(1, round(10 / args.every)))
    outcome = "goal" if info["goal_reached"] else "collision" if info["collision"] else (
        "off-road" if info["offroad"] else "time limit" if truncated else "cut at --max-steps")
    print(f"{args.out}: {len(frames)} frames, {step + 1} steps, return {total:.2f}, {outcome}"
          f" (frame {np.asarray(frames[0]).shape})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
