"""Success rate and return of the scripted baseline driver per preset (the README's table).

    python experiments/baseline_driver.py --episodes 200 --seed 0
"""

import argparse
import sys

from jaximpala.envs.driving.baseline import evaluate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["easy", "default", "hard"])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{'preset':<9}{'episodes':>9}{'success':>9}{'return':>9}{'length':>8}"
          f"{'collision':>11}{'off-road':>10}")
    for preset in args.presets:
        r = evaluate(preset, args.episodes, seed=args.seed)
        print(f"{preset:<9}{r['episodes']:>9}{r['success_rate']:>9.1%}{r['mean_return']:>9.2f}"
              f"{r['mean_length']:>8.0f}{r['collision_rate']:>11.1%}{r['offroad_rate']:>10.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
