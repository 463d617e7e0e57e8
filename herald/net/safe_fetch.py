"""Fetching a URL a client gave us without letting the client reach inside (SSRF).

Every hop (the URL, then each redirect) is checked before anything is sent:

- the scheme is http or https, the URL has a host and no user info;
- the host is resolved here, and *every* address it resolves to must be public: loopback,
  private (RFC 1918, ULA), link-local (169.254.169.254, the cloud metadata address, included),
  shared (100.64/10), multicast, reserved and unspecified addresses are refused, in IPv4 and
  IPv6, and so is an IPv4 address embedded in IPv6 (mapped, 6to4, Teredo) that would be;
- the request goes through ``herald.net.guarded``'s transport, which resolves and checks the
  host again when it opens the connection and connects to an address it just checked (the host
  stays in the URL, ``Host`` and TLS SNI, and the certificate is verified against it), so a
  second DNS answer cannot swap in an internal address between the check and the connect (DNS
  rebinding): it is refused like the first;
- redirects are followed by hand, at most ``max_redirects``;
- the response must be 200 with an allowed content type, at most ``max_bytes`` (by
  Content-Length and while streaming), within ``timeout_s`` for the whole fetch.

Proxies from the environment are ignored (a proxy would connect on our behalf, unchecked).
Operators may allow networks explicitly (``allowed_networks``), e.g. a media host on a private
network, or 127.0.0.1 in tests.

References: OWASP SSRF Prevention Cheat Sheet
(https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html);
IANA special-purpose registries as Python's ``ipaddress`` knows them (``is_global``,
https://docs.python.org/3/library/ipaddress.html; see herald/net/addresses.py).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Iterable

import httpx

from herald.net.addresses import IPAddress, Resolver, is_public, system_resolver
from herald.net.guarded import DestinationRefused, GuardedTransport

__all__ = ["DEFAULT_CONTENT_TYPES", "FetchRefused", "Fetched", "SafeFetcher", "is_public", "static_refusal",
           "system_resolver"]

DEFAULT_CONTENT_TYPES = ("image/", "video/", "audio/")


class FetchRefused(Exception):
    """The URL, an address it resolves to, or its response is not allowed. ``reason`` is one of
    scheme, address, unresolvable, redirects, status, content_type, size, timeout, network."""

    def __init__(self, reason: str, detail: str, status_code: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.status_code = reason, detail, status_code


@dataclass(frozen=True)
class Fetched:
    url: str  # the last hop's URL
    content: bytes
    content_type: str


def static_refusal(url: str, allowed_networks: Iterable[str] = ()) -> str | None:
    """Why ``url`` can never be fetched safely, judged without DNS (for a request's own checks:
    scheme, credentials, localhost names, literal addresses); None when it may be. Names are
    resolved and checked by ``SafeFetcher`` at the time of each call."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "not a URL"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "only http and https URLs with a host are called"
    if parsed.userinfo:
        return "URLs with credentials are not called"
    host = parsed.host.lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"{host} is not a public host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    networks = [ipaddress.ip_network(n) for n in allowed_networks]
    if is_public(address) or any(address in n for n in networks):
        return None
    return f"{address} is not a public address"


class SafeFetcher:
    def __init__(
        self,
        *,
        max_bytes: int = 16 * 1024 * 1024,
        timeout_s: float = 10.0,
        max_redirects: int = 3,
        content_types: Iterable[str] = DEFAULT_CONTENT_TYPES,
        allowed_networks: Iterable[str] = (),
        resolve: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.max_bytes, self.timeout_s, self.max_redirects = max_bytes, timeout_s, max_redirects
        self.content_types = tuple(content_types)
        self.allowed_networks = tuple(ipaddress.ip_network(n) for n in allowed_networks)
        self.resolve = resolve
        transport = transport or GuardedTransport(allowed_networks=allowed_networks, resolve=resolve)
        self.http = httpx.Client(follow_redirects=False, trust_env=False, transport=transport)

    def close(self) -> None:
        self.http.close()

    def allowed(self, address: IPAddress) -> bool:
        return is_public(address) or any(address in network for network in self.allowed_networks)

    def check(self, url: str) -> tuple[httpx.URL, IPAddress]:
        """The parsed URL and the first address it resolves to, all checked; raises FetchRefused.
        (The connection checks again when it opens: this check names the reason.)"""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as error:
            raise FetchRefused("scheme", f"not a URL: {error}") from None
        if parsed.scheme not in ("http", "https"):
            raise FetchRefused("scheme", f"only http and https URLs are fetched, not {parsed.scheme or 'none'}")
        if not parsed.host:
            raise FetchRefused("scheme", "the URL has no host")
        if parsed.userinfo:
            raise FetchRefused("scheme", "URLs with credentials are not fetched")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            literal = ipaddress.ip_address(parsed.host)
            candidates = [literal]
        except ValueError:
            try:
                candidates = [ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolve(parsed.host, port)]
            except (OSError, UnicodeError) as error:
                raise FetchRefused("unresolvable", f"{parsed.host} does not resolve: {error}") from None
        if not candidates:
            raise FetchRefused("unresolvable", f"{parsed.host} has no address")
        refused = [str(a) for a in candidates if not self.allowed(a)]
        if refused:
            raise FetchRefused("address", f"{parsed.host} resolves to an address that is not public: "
                               f"{', '.join(refused)}")
        return parsed, candidates[0]

    def fetch(self, url: str) -> Fetched:
        deadline = time.monotonic() + self.timeout_s
        for _ in range(self.max_redirects + 1):
            parsed, _ = self.check(url)
            response = self._send(parsed, deadline)
            try:
                if response.is_redirect and "location" in response.headers:
                    url = str(parsed.join(response.headers["location"]))
                    continue
                return self._read(parsed, response, deadline)
            finally:
                response.close()
        raise FetchRefused("redirects", f"more than {self.max_redirects} redirects")

    def _send(self, parsed: httpx.URL, deadline: float) -> httpx.Response:
        request = self.http.build_request("GET", parsed, timeout=self._left(deadline))
        try:
            return self.http.send(request, stream=True)
        except DestinationRefused as refused:  # the name resolved elsewhere when connecting (rebinding)
            raise FetchRefused("address", refused.detail) from None
        except httpx.TimeoutException:
            raise FetchRefused("timeout", f"no answer from {parsed.host} within {self.timeout_s} s") from None
        except httpx.HTTPError as error:
            raise FetchRefused("network", f"{parsed.host}: {type(error).__name__}: {error}") from None

    def _read(self, parsed: httpx.URL, response: httpx.Response, deadline: float) -> Fetched:
        if response.status_code != 200:
            raise FetchRefused("status", f"{parsed} answered HTTP {response.status_code}", response.status_code)
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not content_type.startswith(self.content_types):
            raise FetchRefused("content_type", f"{parsed} is {content_type or 'untyped'}, not one of "
                               f"{', '.join(self.content_types)}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchRefused("size", f"{parsed} is {declared} bytes, more than {self.max_bytes}")
        chunks, size = [], 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchRefused("size", f"{parsed} is more than {self.max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FetchRefused("timeout", f"{parsed} took more than {self.timeout_s} s")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise FetchRefused("timeout", f"{parsed} took more than {self.timeout_s} s") from None
        except httpx.HTTPError as error:
            raise FetchRefused("network", f"{parsed}: {type(error).__name__}: {error}") from None
        return Fetched(str(parsed), b"".join(chunks), content_type)

    def _left(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchRefused("timeout", f"the fetch took more than {self.timeout_s} s")
        return left
