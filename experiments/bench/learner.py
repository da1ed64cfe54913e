"""Benchmark: learner frames/s for the default driving network. Same as `jaximpala bench learner`.

Two fake CPU devices:
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python experiments/bench/learner.py
"""

import sys

from jaximpala.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "learner", *sys.argv[1:]]))
