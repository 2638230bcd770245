"""`robot-instseg`: the command-line side of the package (bench, run, export, ...).

Every sub-command uses the same Segmenter as the node, so offline results match live ones.
Each verb group lives in its own module (bench, run, data, train, live), registers its verbs
and calls one library function; this module assembles the parser and turns every failure
into one line and an exit code. Nothing in the package imports ``robot_instseg.cli``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from robot_instseg.cli import bench, data, label, live, run, train
from robot_instseg.cli.common import EXIT_INPUT, EXIT_INTERNAL, CliError


def build_parser() -> argparse.ArgumentParser:
    """The whole `robot-instseg` parser: every verb group registers its own sub-commands."""
    parser = argparse.ArgumentParser(prog="robot-instseg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (bench, run, train, live, data, label):
        group.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one verb. Every failure is one line on stderr and a distinct exit code (see EXIT_*);
    ``-v`` shows the traceback instead."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.DEBUG if args.verbose else logging.WARNING)  # one line per request
    from robot_instseg.engine.errors import EngineError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"robot-instseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes a line
        if args.verbose:
            raise
        if isinstance(exc, CliError):
            message, code = str(exc), exc.code
        elif isinstance(exc, (EngineError, ValueError, OSError)):
            message, code = str(exc), EXIT_INPUT
        else:
            message, code = (f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)",
                             EXIT_INTERNAL)
        print(f"robot-instseg {args.command}: {' '.join(message.split())}", file=sys.stderr)
        return code


__all__ = ["build_parser", "main"]
