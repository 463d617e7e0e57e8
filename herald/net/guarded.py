"""An httpx client for calling hosts a client named (a Mastodon account's ``instance_url``, its
token endpoint), guarded against SSRF at the time of every connection.

``guarded_client(allowed_networks=..., ...)`` is an ordinary ``httpx.Client`` whose connections
are opened by ``GuardedBackend``: when a connection is opened (the first request to a host, and
any later one the pool cannot serve from a kept-alive connection, redirects included), the host
is resolved there and then, *every* address it resolves to must pass ``is_public`` (loopback,
private, link-local and the 169.254.169.254 metadata address, shared, multicast, reserved,
unspecified, and IPv4 embedded in IPv6 are refused, v4 and v6) or lie in ``allowed_networks``,
and the socket is connected to one of the addresses just checked. The check and the connect
are one step, so a DNS answer that changes later (rebinding) cannot slip an internal address
in: a new answer is checked before its connection exists. Because only the socket's address is
pinned, the URL keeps its host: the pool keys connections by host name, the ``Host`` header and
TLS SNI are the host's, and the certificate is verified against it.

A refusal raises ``DestinationRefused``, an ``httpx.ConnectError`` (nothing was sent) carrying
``host`` and the refused ``addresses``; callers that know it should treat it as permanent (the
same name will keep resolving there), callers that do not see a connection failure. A name that
does not resolve is an ordinary ``httpx.ConnectError`` (DNS may recover). Redirects are not
followed (``follow_redirects=False``); a caller that follows them gets each new host checked
the same way. Proxies from the environment are ignored (a proxy would connect unchecked).

References: OWASP SSRF Prevention Cheat Sheet
(https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html);
httpcore's network backends (https://www.encode.io/httpcore/network-backends/) and
``httpx.HTTPTransport`` (https://www.python-httpx.org/advanced/transports/).
"""

from __future__ import annotations

import ipaddress
import typing

import httpcore
import httpx

from herald.net.addresses import IPAddress, Resolver, is_public, system_resolver

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class DestinationRefused(httpx.ConnectError):
    """The host resolves (or is) an address Herald may not call. Nothing was sent."""

    def __init__(self, host: str, addresses: list[str], detail: str) -> None:
        super().__init__(detail)
        self.host, self.addresses, self.detail = host, addresses, detail


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks and connects in one step (httpcore calls ``connect_tcp`` for every new
    connection)."""

    def __init__(self, allowed_networks: typing.Iterable[str] = (), resolve: Resolver = system_resolver,
                 inner: httpcore.NetworkBackend | None = None) -> None:
        self.allowed_networks = tuple(ipaddress.ip_network(n) for n in allowed_networks)
        self.resolve = resolve
        self.inner = inner or httpcore.SyncBackend()

    def allowed(self, address: IPAddress) -> bool:
        return is_public(address) or any(address in network for network in self.allowed_networks)

    def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses to connect to for ``host``; raises DestinationRefused or ConnectError."""
        try:
            found = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolve(host, port)]
            except (OSError, UnicodeError) as error:
                raise httpx.ConnectError(f"{host} does not resolve: {error}") from None
        if not found:
            raise httpx.ConnectError(f"{host} has no address")
        refused = [str(a) for a in found if not self.allowed(a)]
        if refused:
            raise DestinationRefused(host, refused, f"{host} resolves to an address Herald may not call: "
                                     f"{', '.join(refused)} (not public, not in outbound_allowed_networks)")
        return found

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in self.addresses(host, port):
            try:
                return self.inner.connect_tcp(str(address), port, timeout=timeout, local_address=local_address,
                                              socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        raise DestinationRefused(path, [], "unix sockets are never called")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool opens connections through ``GuardedBackend``."""

    def __init__(self, *, allowed_networks: typing.Iterable[str] = (), resolve: Resolver = system_resolver,
                 limits: httpx.Limits = DEFAULT_LIMITS, verify: typing.Any = True) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        self.backend = GuardedBackend(allowed_networks, resolve)
        # httpx builds its pool without a way to pass a network backend; this is the same pool
        # (same TLS context and limits) with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https") or not request.url.host:
            raise DestinationRefused(request.url.host, [], f"only http and https URLs with a host are called, "
                                     f"not {request.url.scheme or 'none'}")
        if request.url.userinfo:
            raise DestinationRefused(request.url.host, [], "URLs with credentials are not called")
        return super().handle_request(request)


def guarded_client(*, allowed_networks: typing.Iterable[str] = (), timeout_s: float = 10.0,
                   limits: httpx.Limits = DEFAULT_LIMITS, resolve: Resolver = system_resolver,
                   verify: typing.Any = True, **client_kwargs: typing.Any) -> httpx.Client:
    """An ``httpx.Client`` that calls only public addresses (and ``allowed_networks``, e.g.
    ``settings.outbound_allowed_networks``), checked when each connection is opened. Other
    keyword arguments go to ``httpx.Client`` (``base_url``, ``headers``, ...); ``transport``,
    ``trust_env`` and ``follow_redirects`` are fixed."""
    for fixed in ("transport", "trust_env", "follow_redirects", "proxy", "mounts"):
        if fixed in client_kwargs:
            raise TypeError(f"guarded_client fixes {fixed}")
    transport = GuardedTransport(allowed_networks=allowed_networks, resolve=resolve, limits=limits, verify=verify)
    return httpx.Client(transport=transport, timeout=timeout_s, trust_env=False, follow_redirects=False,
                        **client_kwargs)
