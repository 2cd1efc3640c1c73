"""The library's errors: every exception chutes raises on purpose derives from :class:`ChutesError`.

Errors a chute's author can cause are also ``ValueError``\\ s, so callers can catch bad input in one place.
Definition errors carry the key path they concern (``("cord", 0, "public_api_path")`` relative to the
object being defined), so a spec loader can point at the right line without reading the message.
"""

from __future__ import annotations

from collections.abc import Sequence

KeyPath = tuple[str | int, ...]


class ChutesError(Exception):
    """Base class of every exception the chutes library raises on purpose."""


class ChuteDefinitionError(ChutesError, ValueError):
    """A decorator or constructor argument that cannot work: a bad path, a duplicate route, a bad signature.

    ``key`` is the path of the offending key, relative to the thing being defined (a cord's
    ``("public_api_path",)``, a chute's ``("name",)``); empty when the error concerns the whole.
    """

    def __init__(self, message: str, key: Sequence[str | int] = ()) -> None:
        super().__init__(message)
        self.key: KeyPath = tuple(key)

    def within(self, *prefix: str | int) -> ChuteDefinitionError:
        """This error with ``prefix`` put before its key path (a cord's error seen from its chute)."""
        self.key = (*prefix, *self.key)
        return self


class HandlerSignatureError(ChuteDefinitionError):
    """A handler whose parameters cannot be mapped from a request body."""


class StartupError(ChutesError):
    """A chute that cannot start for a reason one line explains (a missing engine package, say).

    The server logs it without a traceback; subclasses may also derive from the builtin that fits.
    """
