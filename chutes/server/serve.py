"""Starting uvicorn for a chute object (``Chute.run_local``); serving a TARGET is the command line's job."""

from __future__ import annotations

import logging
import multiprocessing
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from chutes.server.log_config import log_config
from chutes.server.protocol import HttpProtocol

if TYPE_CHECKING:
    from chutes.chute import Chute

logger = logging.getLogger("chutes.server")


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

    settings = Settings.load()
    options: dict[str, Any] = {
        "log_level": log_level,
        "log_config": log_config(log_level, settings.log_format),
        "proxy_headers": False,  # the chute's guard reads proxy headers, from trusted peers only
        "http": HttpProtocol,  # one write per response (chutes.server.protocol)
        "timeout_graceful_shutdown": settings.shutdown_grace,  # after the drain (README, "Shutdown")
    }
    found = _import_string(chute) if reload else None
    if reload and found is None:
        logger.warning("reload needs the chute importable as module:attr; serving without reload")
    if found is not None:
        reference, app_dir = found
        uvicorn.run(reference, host=host, port=port, reload=True, app_dir=app_dir, **options)
        return
    uvicorn.run(chute, host=host, port=port, **options)
