"""Which addresses Herald may call on a client's behalf, and how names are resolved.

``is_public``: globally routable unicast per the IANA special-purpose registries as Python's
``ipaddress`` knows them (https://docs.python.org/3/library/ipaddress.html, ``is_global``), not
multicast, reserved or unspecified, and no IPv4 address embedded in an IPv6 one (mapped, 6to4,
Teredo) that would not be. Loopback, RFC 1918, ULA, link-local (169.254.169.254, the cloud
metadata address, included) and shared (100.64/10) addresses are therefore not public.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]  # (host, port) → addresses; raises OSError when it cannot


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    return [a for a in found if a is not None]


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast, and so is any IPv4 address it embeds."""
    if not address.is_global or address.is_multicast or address.is_reserved or address.is_unspecified:
        return False
    return all(is_public(inner) for inner in _embedded_ipv4(address))
