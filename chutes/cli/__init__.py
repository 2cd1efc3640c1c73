"""The ``chutes`` command line: ``python -m chutes COMMAND``.

Each command group lives in its own module exposing ``register(subparsers)``; a command handler
returns the exit status. Library errors (``ValueError`` subclasses) become one clean line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from chutes.cli import jobs, render, serve, spec

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, one subcommand per product command."""
    parser = _Parser(prog="chutes", description="Define an AI application once; serve, validate and ship it.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for module in (serve, spec, render, jobs):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed check, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:
        # Bad specs, bad targets and bad arguments are the user's to fix: one line, no traceback.
        for line in str(exc).strip().splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return 1
