"""Benchmark: our V-trace and GAE against rlax's. Same as `jaximpala bench losses`."""

import sys

from jaximpala.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "losses", *sys.argv[1:]]))
