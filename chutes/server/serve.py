"""Starting uvicorn for a chute: in-process, or through an import string when reloading or forking workers."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from chutes.server.log_config import LogFormat, log_config

if TYPE_CHECKING:
    from chutes.chute import Chute

TARGET_ENV = "CHUTES_TARGET"
logger = logging.getLogger("chutes.server")


def create_app() -> Chute:
    """uvicorn factory: load the chute named by ``$CHUTES_TARGET`` (each worker process calls it)."""
    from chutes.target import load_target

    return load_target(os.environ[TARGET_ENV])


def serve_target(
    target: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    reload: bool = False,
    workers: int = 1,
    log_level: str = "info",
    log_format: LogFormat = "text",
) -> None:
    """Serve a spec file or ``module:attr``; ``reload`` and ``workers`` re-load the target in each process.

    Logging follows :func:`chutes.server.log_config.log_config` at ``log_level`` in ``log_format``.
    """
    logging_config = log_config(log_level, log_format)
    from chutes.target import is_spec_path, load_target

    if reload or workers > 1:
        # Check the target once up front so a bad spec fails here with a clean message, not in a worker.
        load_target(target)
        spec_path = is_spec_path(target)
        os.environ[TARGET_ENV] = str(Path(target).resolve()) if spec_path else target
        # Handlers resolve from the spec's folder, then the current one: watch both.
        reload_dirs = sorted({str(Path(target).resolve().parent), str(Path.cwd())} if spec_path else {str(Path.cwd())})
        uvicorn.run(
            "chutes.server.serve:create_app",
            factory=True,
            host=host,
            port=port,
            reload=reload,
            reload_dirs=reload_dirs if reload else None,
            workers=None if reload else workers,
            log_level=log_level,
            log_config=logging_config,
        )
        return
    uvicorn.run(load_target(target), host=host, port=port, log_level=log_level, log_config=logging_config)


def _import_string(chute: Chute) -> tuple[str, str] | None:
    """``(module:attr, app_dir)`` naming ``chute`` for a reloading server, if it can be found."""
    module_name = chute.module_name
    module = sys.modules.get(module_name or "")
    if module is None:
        return None
    for attr, value in vars(module).items():
        if value is chute:
            if module_name == "__main__":
                spec = getattr(module, "__spec__", None)
                if spec is not None and spec.name and spec.name != "__main__":  # python -m package.module
                    return f"{spec.name}:{attr}", str(Path.cwd())
                path = getattr(module, "__file__", None)
                if path is None:
                    return None
                return f"{Path(path).stem}:{attr}", str(Path(path).resolve().parent)
            return f"{module_name}:{attr}", str(Path.cwd())
    return None


def serve_chute(chute: Chute, *, host: str, port: int, reload: bool, log_level: str) -> None:
    """``Chute.run_local``: reload needs an import string; without one, serve this object without reload."""
    if reload and multiprocessing.parent_process() is not None:
        # The reloader's server process re-runs the script that called run_local() at import (a script
        # without an `if __name__ == "__main__":` guard): the server is already being started, by uvicorn.
        return
    from chutes.settings import Settings

    logging_config = log_config(log_level, Settings.load().log_format)
    found = _import_string(chute) if reload else None
    if reload and found is None:
        logger.warning("reload needs the chute importable as module:attr; serving without reload")
    if found is not None:
        reference, app_dir = found
        uvicorn.run(
            reference,
            host=host,
            port=port,
            reload=True,
            log_level=log_level,
            app_dir=app_dir,
            log_config=logging_config,
        )
        return
    uvicorn.run(chute, host=host, port=port, log_level=log_level, log_config=logging_config)
