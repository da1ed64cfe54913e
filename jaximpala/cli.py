"""The `jaximpala` command line (also `python -m jaximpala`).

Each subcommand lives in its own module and is imported only when it runs, so
`jaximpala bench losses` does not pay for importing the simulator or the learner.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import signal
import sys

# command -> module with `add_arguments(parser)` and `run(args) -> int`.
COMMANDS = {
    "train": "jaximpala.train",
    "eval": "jaximpala.evaluation",
    "render": "jaximpala.render_run",
    "plot": "jaximpala.plot",
    "keys": "jaximpala.keys",
}
# bench target name -> module with `add_arguments(parser)` and `run(args) -> int`.
BENCHMARKS = {
    "learner": "jaximpala.bench.learner",
    "losses": "jaximpala.bench.losses",
    "pipeline": "jaximpala.bench.pipeline",
    "sim": "jaximpala.bench.sim",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaximpala", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=module.__doc__.splitlines()[0],
                                  description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    bench = commands.add_parser("bench", help="run a benchmark and print ratios against a peer")
    targets = bench.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        sub = targets.add_parser(name, help=module.__doc__.splitlines()[0])
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = ["jaximpala", *argv]  # recorded in the run directory
    if args.version:
        from jaximpala import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    _dump_stacks_on_sigusr1()
    return int(args.handler(args) or 0)


def _dump_stacks_on_sigusr1() -> None:
    """`kill -USR1 PID` prints every thread's Python stack to stderr and the command goes
    on: where a run that stopped making progress waits (for data, a peer, a collective)."""
    try:  # the process's own stderr: `sys.stderr` may be a stand-in with no descriptor
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (AttributeError, ValueError):  # no SIGUSR1 (Windows) or no stderr at all
        pass


if __name__ == "__main__":
    sys.exit(main())
