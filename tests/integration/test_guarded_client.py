"""The guarded client (herald/net/guarded.py) against real HTTP servers: a host that resolves to
an internal address is refused when the connection is opened, whatever it resolved to before
(DNS rebinding), directly or through a redirect, and nothing reaches the internal service."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from herald.net.guarded import DestinationRefused, guarded_client

pytestmark = pytest.mark.integration

PUBLIC = "127.0.0.2"  # the one loopback address the tests allow, standing in for a public instance
ALLOWED = [f"{PUBLIC}/32"]


class Server(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real instance
    hits: list[tuple[str, str, str]] = []  # (server address, path, Host header)

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        Server.hits.append((self.server.server_address[0], url.path, self.headers["Host"]))
        if url.path == "/redirect":
            self._answer(302, b"", {"Location": parse_qs(url.query)["to"][0]})
        elif url.path == "/bye":
            self._answer(200, b"bye", {"Connection": "close"})
        else:
            self._answer(200, self.headers["Host"].encode(), {})

    do_POST = do_GET

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _serve(host: str) -> Iterator[int]:
    server = ThreadingHTTPServer((host, 0), Server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def public() -> Iterator[int]:
    Server.hits.clear()
    yield from _serve(PUBLIC)


@pytest.fixture
def internal() -> Iterator[int]:
    """A service on 127.0.0.1 that must never be reached."""
    yield from _serve("127.0.0.1")


class Dns:
    """A resolver whose answers the test changes (a rebinding DNS)."""

    def __init__(self, **answers: list[str]) -> None:
        self.answers = {name.replace("_", "."): found for name, found in answers.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: name or service not known")
        return self.answers[host]


def _internal_hits() -> list:
    return [hit for hit in Server.hits if hit[0] == "127.0.0.1"]


def test_an_allowed_host_is_called_by_name(public):
    dns = Dns(instance_example=[PUBLIC])
    with guarded_client(allowed_networks=ALLOWED, resolve=dns) as http:
        answer = http.get(f"http://instance.example:{public}/api")
    assert answer.text == f"instance.example:{public}", "the Host header is the name, the socket the address"
    assert dns.asked == ["instance.example"]


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254", "[::1]", "10.0.0.1", "192.168.1.1",
                                  "100.100.100.200", "[fd00:ec2::254]", "[::ffff:127.0.0.1]", "0.0.0.0",
                                  "[fe80::1]", "224.0.0.1", "[ff02::1]"])
def test_internal_addresses_are_refused_before_any_connection(internal, host):
    Server.hits.clear()
    with guarded_client(allowed_networks=ALLOWED) as http, pytest.raises(DestinationRefused) as refused:
        http.post(f"http://{host}:{internal}/oauth/token", data={"grant_type": "refresh_token"})
    assert "may not call" in refused.value.detail and refused.value.addresses
    assert _internal_hits() == []


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["169.254.169.254"], ["::1"], [PUBLIC, "10.1.2.3"]])
def test_a_name_resolving_inside_is_refused(internal, answer):
    dns = Dns(instance_example=answer)
    with guarded_client(allowed_networks=ALLOWED, resolve=dns) as http, pytest.raises(DestinationRefused):
        http.get(f"http://instance.example:{internal}/api/v1/accounts/verify_credentials")
    assert _internal_hits() == []


def test_a_rebound_name_is_refused_at_the_next_connection(public, internal):
    """The name was fine when first called (and when the account was connected); the next
    connection asks DNS again and checks the new answer."""
    dns = Dns(instance_example=[PUBLIC])
    with guarded_client(allowed_networks=ALLOWED, resolve=dns) as http:
        assert http.get(f"http://instance.example:{public}/bye").text == "bye"  # the server closes the connection
        dns.answers["instance.example"] = ["127.0.0.1"]
        with pytest.raises(DestinationRefused):
            http.get(f"http://instance.example:{public}/api")
    assert dns.asked == ["instance.example", "instance.example"]
    assert _internal_hits() == [] and [path for _, path, _ in Server.hits] == ["/bye"]


def test_a_redirect_to_an_internal_address_is_refused(public, internal):
    dns = Dns(instance_example=[PUBLIC], rebound_example=["127.0.0.1"])
    targets = [f"http://127.0.0.1:{internal}/", f"http://rebound.example:{internal}/", "http://169.254.169.254/",
               f"http://[::1]:{internal}/"]
    with guarded_client(allowed_networks=ALLOWED, resolve=dns) as http:
        not_followed = http.get(f"http://instance.example:{public}/redirect?to={targets[0]}")
        assert not_followed.status_code == 302, "the client does not follow redirects"
        for target in targets:
            with pytest.raises(DestinationRefused):
                http.get(f"http://instance.example:{public}/redirect?to={target}", follow_redirects=True)
    assert _internal_hits() == []


@pytest.mark.parametrize("url", ["ftp://instance.example/", "http://user:pw@instance.example/"])
def test_only_plain_http_and_https_urls_are_called(url):
    with guarded_client(allowed_networks=ALLOWED, resolve=Dns(instance_example=[PUBLIC])) as http:
        with pytest.raises(DestinationRefused):
            http.get(url)


def test_a_name_that_does_not_resolve_is_an_ordinary_connection_failure():
    with guarded_client(resolve=Dns()) as http, pytest.raises(httpx.ConnectError) as failed:
        http.get("http://nowhere.example/")
    assert not isinstance(failed.value, DestinationRefused), "DNS may recover: not a refusal"


def test_proxies_from_the_environment_are_ignored(public, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:1")
    with guarded_client(allowed_networks=ALLOWED, resolve=Dns(instance_example=[PUBLIC])) as http:
        assert http.get(f"http://instance.example:{public}/").status_code == 200
