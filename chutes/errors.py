"""Errors a chute's author can cause; each is a ``ValueError`` so callers can catch bad input in one place."""

from __future__ import annotations


class ChuteDefinitionError(ValueError):
    """A decorator or constructor argument that cannot work: a bad path, a duplicate route, a bad signature."""


class HandlerSignatureError(ChuteDefinitionError):
    """A handler whose parameters cannot be mapped from a request body."""


class StartupError(Exception):
    """A chute that cannot start for a reason one line explains (a missing engine package, say).

    The server logs it without a traceback; subclasses may also derive from the builtin that fits.
    """
