"""The client's address behind reverse proxies, taken from proxy headers only when the peer is trusted."""

from __future__ import annotations

import ipaddress

from chutes.errors import ChutesError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxySettingError(ChutesError, ValueError):
    """``CHUTES_FORWARDED_ALLOW_IPS`` holds something that is not an address or a network."""


class TrustedProxies:
    """The peers allowed to say who the client is (``X-Forwarded-For``, ``X-Forwarded-Proto``).

    ``spec`` is a comma-separated list of addresses and networks (``10.0.0.0/8``), or ``*`` for any peer;
    empty trusts nobody, and the peer's own address is the client's.
    """

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        self.everyone = "*" in items
        self._networks: list[Network] = []
        for item in items:
            if item == "*":
                continue
            try:
                self._networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ProxySettingError(
                    f"CHUTES_FORWARDED_ALLOW_IPS: {item!r} is not an IP address or network"
                ) from None
        self._known: dict[str, bool] = {}

    @property
    def enabled(self) -> bool:
        """Whether any peer is trusted."""
        return self.everyone or bool(self._networks)

    def trusts(self, host: str) -> bool:
        """Whether ``host`` is a trusted proxy."""
        if self.everyone:
            return True
        known = self._known.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                known = False
            else:
                known = any(address in network for network in self._networks)
            if len(self._known) > 10_000:
                self._known.clear()  # bounded memory under address churn
            self._known[host] = known
        return known

    def client(self, peer: str, forwarded_for: bytes | None) -> str:
        """The client's address: the last ``X-Forwarded-For`` hop not added by a trusted proxy."""
        if forwarded_for is None or not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.decode("latin-1").split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer
