"""Runtime settings, read from ``CHUTES_*`` environment variables when a chute starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chutes.errors import ChutesError


class SettingsError(ChutesError, ValueError):
    """A ``CHUTES_*`` environment variable holds a value the server cannot use."""


class Settings(BaseSettings):
    """Server and job settings; every field is overridable with ``CHUTES_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="CHUTES_", extra="ignore")

    data_dir: Path = Field(Path(".chutes"), description="Folder holding the job store.")
    queue_size: int = Field(64, ge=0, description="Cord calls that may wait for a free slot beyond `concurrency`.")
    queue_wait: float = Field(30.0, ge=0, description="Seconds a queued cord call waits before a 429.")
    job_backoff: float = Field(1.0, ge=0, description="Delay before a job's first retry; doubles each retry.")
    job_backoff_max: float = Field(300.0, ge=0, description="Longest delay between two attempts of a run, in seconds.")
    job_workers: int = Field(1, ge=1, description="Job runs executing at once in one process.")
    job_retention: float = Field(
        7 * 24 * 3600.0, ge=0, description="Seconds finished runs (and their files) are kept; 604800 is 7 days."
    )
    job_lease: float = Field(
        30.0, gt=0, description="Seconds a running attempt stays owned without renewal before another process takes it."
    )
    database_url: str = Field(
        "",
        description="postgresql://... to keep job runs in PostgreSQL, shared by replicas; unset: SQLite in data_dir.",
    )
    scheduler: bool = Field(True, description="Fire cron schedules from this process.")
    timezone: str = Field("UTC", description="Time zone in which cron schedules are read.")
    host: str = Field("127.0.0.1", description="Address `serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port `serve` listens on.")
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "info", description="Log level of `serve`."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines of `serve`: `text`, or `json` for one JSON object per line."
    )
    api_keys: str = Field(
        "", description="Comma-separated API keys; when set, cord, job and websocket routes need one."
    )
    rate_limit: int = Field(0, ge=0, description="Requests per minute per client address; 0 switches it off.")
    max_body_size: int = Field(
        16 * 1024 * 1024, ge=1, description="Largest request body or websocket message in bytes (413, close 1009)."
    )
    body_timeout: float = Field(
        30.0, gt=0, description="Seconds a request body may take to arrive in full; slower gets 408."
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated proxy addresses or networks (or `*`) whose `X-Forwarded-For` names the client.",
    )
    public_docs: bool = Field(True, description="Serve `/docs`, `/openapi.json` and `/_metrics` without an API key.")
    drain_seconds: float = Field(
        5.0, ge=0, description="Seconds after SIGTERM that `/_ready` is 503 while requests are still taken."
    )
    shutdown_grace: float = Field(
        10.0, ge=0, description="Seconds in-flight calls, streams and jobs get to finish at shutdown."
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def api_key_set(self) -> frozenset[str]:
        """The configured API keys, blanks removed."""
        return frozenset(key.strip() for key in self.api_keys.split(",") if key.strip())

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the settings from the environment; a bad value raises ``SettingsError`` naming its variable.

        ``overrides`` (by field name) win over the environment.
        """
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_url=False):
                name = "CHUTES_" + "_".join(str(part) for part in error["loc"]).upper()
                problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
            raise SettingsError("\n".join(problems)) from None
