"""``chutes serve TARGET``: serve a spec file or ``module:attr`` with uvicorn."""

from __future__ import annotations

import argparse
from typing import Any

from chutes.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    from chutes.server.serve import serve_target

    settings = Settings.load()
    try:
        serve_target(
            args.target,
            host=args.host or settings.host,
            port=settings.port if args.port is None else args.port,
            reload=args.reload,
            workers=args.workers,
            log_level=args.log_level or settings.log_level,
            log_format=settings.log_format,
        )
    except SystemExit as exc:
        # uvicorn exits with 3 when the chute fails to start (a startup hook or a setting): a failed check.
        return 1 if exc.code == 3 else int(exc.code or 0)
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve``."""
    parser = commands.add_parser("serve", help="serve a chute (spec file or module:attr)")
    parser.add_argument("target", help="a chute.toml / chute.yaml file, or module:attr naming a Chute")
    parser.add_argument("--host", default=None, help="bind address (default $CHUTES_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $CHUTES_PORT or 8000)")
    parser.add_argument("--reload", action="store_true", help="restart when files change (development)")
    parser.add_argument("--workers", type=_positive, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--log-level", choices=["critical", "error", "warning", "info", "debug", "trace"], help="log level"
    )
    parser.set_defaults(handler=_serve)
