"""Benchmark: the actor -> learner pipeline (transport vs memcpy and pickle+Redis, actor
overhead, end-to-end frames/s). Same as `jaximpala bench pipeline`."""

import sys

from jaximpala.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "pipeline", *sys.argv[1:]]))
