"""Generate CurveZMQ keys for a multi-host run (`jaximpala keys DIR`).

Writes a server key pair (the learners), a client key pair (the actors) and an
`allowed_clients/` directory holding the client public keys the learners accept. Share
DIR with every host (keep the `*.key_secret` files private) and set
`runtime.curve_keys_dir=DIR`; to admit another client key pair, copy its public `.key`
file into `allowed_clients/`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="where to write the keys")
    parser.add_argument("--force", action="store_true",
                        help="overwrite keys that already exist in the directory")


def run(args) -> int:
    from jaximpala.transport.sockets import generate_keys

    existing = sorted(args.directory.glob("*.key*")) if args.directory.exists() else []
    if existing and not args.force:
        print(f"{args.directory} already holds keys ({existing[0].name}, ...); "
              "pass --force to replace them")
        return 1
    paths = generate_keys(args.directory)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"set runtime.curve_keys_dir={args.directory} on every learner host")
    return 0
