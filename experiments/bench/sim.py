"""Benchmark: our driving simulator against highway-env and MetaDrive. Same as
`jaximpala bench sim`; pass `--peer-python /path/to/venv/bin/python` where the peers live."""

import sys

from jaximpala.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "sim", *sys.argv[1:]]))
