"""How ``serve`` logs: one format for the chute's logger, the framework's and uvicorn's access log.

``serve`` (and ``run_local``) hand :func:`log_config` to uvicorn, which applies it with
``logging.config.dictConfig`` in every server process (workers and reloads included). Each line carries a
UTC timestamp, the level, the logger's name and, inside a request, its request id; with
``CHUTES_LOG_FORMAT=json`` each line is one JSON object, as log collectors expect. A library call never
configures logging: only the command line does (and a test client leaves the user's logging alone).
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["LogFormat", "current_request_id", "log_config", "set_request_id"]

LogFormat = Literal["text", "json"]

_request_id: ContextVar[str | None] = ContextVar("chutes_request_id", default=None)

_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")
"""The arguments of uvicorn's access log record, in order."""


def set_request_id(request_id: str) -> None:
    """Mark the current request (its task and what it calls) with ``request_id`` for the log lines it writes."""
    _request_id.set(request_id)


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``None`` outside a request) to every record a handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops one."""
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True


class LifespanEchoFilter(logging.Filter):
    """Drops uvicorn's own error lines about the lifespan: the chute's runtime already reported the failure.

    Without it a failed start shows three times (the runtime's line, uvicorn echoing its message, and
    "Application startup failed. Exiting."); the process still exits with uvicorn's status.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep everything but uvicorn's lifespan error echo."""
        return not (record.name == "uvicorn.error" and record.module == "on" and record.levelno >= logging.ERROR)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2024-01-01T02:00:00.000Z INFO     chutes.my-chute [req-1] message``; the id only inside a request."""

    def format(self, record: logging.LogRecord) -> str:
        """One line (plus a traceback when there is one)."""
        request_id = getattr(record, "request_id", None)
        where = f" [{request_id}]" if request_id else ""
        line = f"{_timestamp(record)} {record.levelname:<8} {record.name}{where} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, ``request_id`` and, for the
    access log, ``client``, ``method``, ``path``, ``http_version`` and ``status``; ``exception`` holds a
    traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            entry.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_config(level: str, fmt: LogFormat = "text") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` configuration ``serve`` gives uvicorn.

    Args:
        level: The lowest level shown (``debug``, ``info``, ...; ``trace`` is uvicorn's level below debug),
            for the chute's logger, the framework's and uvicorn's alike.
        fmt: ``text`` (one readable line per record) or ``json`` (one JSON object per line).
    """
    from uvicorn.config import LOG_LEVELS  # registers uvicorn's TRACE level name

    numeric = LOG_LEVELS[level.lower()]
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": f"{__name__}.RequestIdFilter"},
            "lifespan_echo": {"()": f"{__name__}.LifespanEchoFilter"},
        },
        "formatters": {"chutes": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "chutes",
                "filters": ["request_id", "lifespan_echo"],
            }
        },
        # Everything propagates to the root's one handler: the chute's `self.logger` (chutes.<name>),
        # the framework's loggers and uvicorn's error and access logs share one format.
        "root": {"handlers": ["stderr"], "level": numeric},
        "loggers": {
            "uvicorn": {"handlers": [], "level": numeric, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": numeric, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": numeric, "propagate": True},
            "chutes": {"handlers": [], "level": numeric, "propagate": True},
        },
    }
