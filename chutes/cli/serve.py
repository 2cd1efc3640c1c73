"""``chutes serve TARGET``: serve a spec file or ``module:attr`` with uvicorn."""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chutes.server.shared_metrics import ENV as SHARED_METRICS_ENV
from chutes.settings import Settings

if TYPE_CHECKING:
    from chutes.chute import Chute
    from chutes.server.log_config import LogFormat

TARGET_ENV = "CHUTES_TARGET"


def _frozen(chute: Chute) -> Chute:
    # Everything alive now (modules, the app) lives as long as the server: moving it out of the
    # collector's generations keeps full collections short, and so the latency tail. A server process
    # only: a library must not freeze its caller's objects (a test suite's, say).
    gc.collect()
    gc.freeze()
    return chute


def create_app() -> Chute:
    """uvicorn factory: load the chute named by ``$CHUTES_TARGET`` (each worker process calls it)."""
    from chutes.target import load_target

    return _frozen(load_target(os.environ[TARGET_ENV]))


def serve_target(
    target: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    reload: bool = False,
    workers: int = 1,
    log_level: str = "info",
    log_format: LogFormat = "text",
    shutdown_grace: float | None = None,
) -> None:
    """Serve a spec file or ``module:attr``; ``reload`` and ``workers`` re-load the target in each process.

    Logging follows :func:`chutes.server.log_config.log_config` at ``log_level`` in ``log_format``.
    """
    import uvicorn

    from chutes.server.log_config import log_config
    from chutes.server.protocol import HttpProtocol
    from chutes.target import is_spec_path, load_target

    options: dict[str, Any] = {
        "log_config": log_config(log_level, log_format),
        "proxy_headers": False,  # the chute's guard reads proxy headers, from trusted peers only
        "http": HttpProtocol,  # one write per response (chutes.server.protocol)
        # In-flight calls and streams get this long once the drain is over (README, "Shutdown").
        "timeout_graceful_shutdown": shutdown_grace,
    }

    if reload or workers > 1:
        # Check the target once up front so a bad spec fails here with a clean message, not in a worker.
        load_target(target)
        shared = None
        if workers > 1 and not os.environ.get(SHARED_METRICS_ENV):
            # The workers pool their metrics here, so /_metrics reports the whole server whichever answers.
            shared = os.environ[SHARED_METRICS_ENV] = tempfile.mkdtemp(prefix="chutes-metrics-")
        spec_path = is_spec_path(target)
        os.environ[TARGET_ENV] = str(Path(target).resolve()) if spec_path else target
        # Handlers resolve from the spec's folder, then the current one: watch both.
        reload_dirs = sorted({str(Path(target).resolve().parent), str(Path.cwd())} if spec_path else {str(Path.cwd())})
        uvicorn.run(
            "chutes.cli.serve:create_app",
            factory=True,
            host=host,
            port=port,
            reload=reload,
            reload_dirs=reload_dirs if reload else None,
            workers=None if reload else workers,
            log_level=log_level,
            **options,
        )
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)
        return
    uvicorn.run(_frozen(load_target(target)), host=host, port=port, log_level=log_level, **options)


def _serve(args: argparse.Namespace) -> int:
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
            shutdown_grace=settings.shutdown_grace,
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
