"""Optional API keys on cord, job and websocket routes, compared in constant time."""

from __future__ import annotations

import hmac


class ApiKeys:
    """Bearer or ``X-API-Key`` keys, compared in constant time."""

    def __init__(self, keys: frozenset[str]) -> None:
        self._keys = [key.encode() for key in sorted(keys)]

    @property
    def enabled(self) -> bool:
        """Whether any key is configured."""
        return bool(self._keys)

    def allows(self, authorization: bytes | None, api_key: bytes | None) -> bool:
        """Whether the request's ``Authorization: Bearer`` or ``X-API-Key`` header carries a known key."""
        candidate = api_key
        if candidate is None and authorization is not None:
            scheme, _, token = authorization.partition(b" ")
            if scheme.lower() == b"bearer":
                candidate = token.strip()
        if not candidate:
            return False
        # Compare against every key so the time taken does not reveal which prefix matched.
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(candidate, key)
        return found
