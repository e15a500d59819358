"""The address of the client a request comes from, for throttles.

Behind a reverse proxy (the chart's Ingress) every request's peer is the proxy, so throttling on
the peer would put every user in one bucket. ``X-Forwarded-For`` names the real client, but
anyone can send that header: it is believed only when the peer is in a configured trusted proxy
network, and then read from the right, skipping further trusted hops, so a client cannot choose
its address by prepending entries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

__all__ = ["Networks", "client_address", "client_bucket", "forwarded_client", "parse_networks",
           "throttle_bucket"]

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
TRUSTED_PROXIES: web.AppKey[Networks] = web.AppKey("exocorp.trusted_proxies")
"""Networks whose X-Forwarded-For is believed (parsed ``settings.trusted_proxies``)."""


def parse_networks(cidrs: Iterable[str]) -> Networks:
    """``("10.0.0.0/8", "fd00::/8", "127.0.0.1")``: ValueError names the first bad entry."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP network: {cidr!r}") from None
    return tuple(networks)


def _trusted(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str | None, forwarded_for: Sequence[str], networks: Networks) -> str:
    """The client address given the peer and the ``X-Forwarded-For`` header values."""
    if not peer or not networks or not _trusted(peer, networks):
        return peer or "unknown"
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client  # garbage from an untrusted hop: stop at the last hop we trust
        client = hop
        if not _trusted(hop, networks):
            return hop
    return client


def throttle_bucket(address: str) -> str:
    """What one client is for a throttle: an IPv4 address, but an IPv6 host's whole /64 (one
    subscriber's prefix, 2^64 addresses it may pick from at will: counting per address would
    not count it at all)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_bucket(request: web.Request) -> str:
    """The request's client as throttles count it (see :func:`throttle_bucket`)."""
    return throttle_bucket(client_address(request))


def client_address(request: web.Request) -> str:
    """The request's client: its peer, or who a trusted proxy peer says it forwards for."""
    return forwarded_client(request.remote, request.headers.getall("X-Forwarded-For", []),
                            request.app[TRUSTED_PROXIES])
