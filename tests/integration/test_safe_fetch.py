"""The SSRF guard against a real HTTP server: internal addresses are refused, directly and after
a redirect; redirects, size, time and content type are capped; the connection goes to an
address checked when it was opened, so a DNS answer that changes after the check is refused."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from herald.net.safe_fetch import FetchRefused, SafeFetcher, is_public

pytestmark = pytest.mark.integration

MEDIA_HOST = "127.0.0.2"  # the one loopback address the tests allow, standing in for a public media host
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100


class Media(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        Media.hits.append(url.path)
        if url.path == "/redirect":
            self._answer(302, b"", {"Location": parse_qs(url.query)["to"][0]})
        elif url.path == "/loop":
            self._answer(302, b"", {"Location": "/loop"})
        elif url.path == "/img.png":
            self._answer(200, PNG, {"Content-Type": "image/png"})
        elif url.path == "/host":
            self._answer(200, self.headers["Host"].encode(), {"Content-Type": "image/png"})
        elif url.path == "/html":
            self._answer(200, b"<html></html>", {"Content-Type": "text/html"})
        elif url.path == "/big":
            self._answer(200, b"\0" * 5000, {"Content-Type": "image/png"})
        elif url.path == "/streamed-big":  # no Content-Length: the size is only known while reading
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for _ in range(10):
                    self.wfile.write(b"\0" * 1000)
            except BrokenPipeError:  # the fetcher stopped reading at its limit, as it should
                pass
        elif url.path == "/slow":
            time.sleep(2)
            self._answer(200, PNG, {"Content-Type": "image/png"})
        else:
            self._answer(404, b"", {})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _serve(host: str) -> Iterator[str]:
    server = ThreadingHTTPServer((host, 0), Media)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def media() -> Iterator[str]:
    yield from _serve(MEDIA_HOST)


@pytest.fixture
def internal() -> Iterator[str]:
    """A service on 127.0.0.1 that must never be reached."""
    yield from _serve("127.0.0.1")


@pytest.fixture
def fetcher() -> Iterator[SafeFetcher]:
    f = SafeFetcher(allowed_networks=[f"{MEDIA_HOST}/32"], max_bytes=2000, timeout_s=1.0, max_redirects=3)
    yield f
    f.close()


def _refused(fetcher: SafeFetcher, url: str, reason: str) -> FetchRefused:
    with pytest.raises(FetchRefused) as refused:
        fetcher.fetch(url)
    assert refused.value.reason == reason, refused.value
    return refused.value


def test_an_allowed_host_is_fetched(fetcher, media):
    fetched = fetcher.fetch(f"{media}/img.png")
    assert fetched.content == PNG and fetched.content_type == "image/png"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://localhost/",
    "http://10.0.0.1/", "http://192.168.1.1/", "http://100.100.100.200/", "http://[fd00:ec2::254]/",
    "http://[::ffff:127.0.0.1]/", "http://[2002:7f00:1::1]/", "http://0.0.0.0/", "http://[fe80::1]/",
    "http://224.0.0.1/", "http://2130706433/",  # 127.0.0.1 as one number
])
def test_internal_addresses_are_refused_before_any_connection(fetcher, url):
    _refused(fetcher, url, "address")


def test_internal_services_are_not_reached_even_when_listening(fetcher, internal):
    Media.hits.clear()
    _refused(fetcher, f"{internal}/img.png", "address")
    _refused(fetcher, internal.replace("127.0.0.1", "localhost") + "/img.png", "address")
    assert Media.hits == []


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/img.png", "http://169.254.169.254/latest/meta-data/",
                                    "http://[::1]:{port}/img.png", "http://localhost:{port}/img.png"])
def test_a_redirect_to_an_internal_address_is_refused(fetcher, media, internal, target):
    port = internal.rsplit(":", 1)[1]
    Media.hits.clear()
    _refused(fetcher, f"{media}/redirect?to={target.format(port=port)}", "address")
    assert Media.hits == ["/redirect"], "the internal service got nothing"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/a.png", "gopher://x/", "//x/a",
                                 "http://user:pw@example.org/a.png"])
def test_only_plain_http_and_https_urls(fetcher, url):
    _refused(fetcher, url, "scheme")


def test_redirects_are_capped(fetcher, media):
    _refused(fetcher, f"{media}/loop", "redirects")
    relative = fetcher.fetch(f"{media}/redirect?to=/img.png")
    assert relative.content == PNG


def test_size_time_and_content_type_are_capped(fetcher, media):
    _refused(fetcher, f"{media}/big", "size")
    _refused(fetcher, f"{media}/streamed-big", "size")
    _refused(fetcher, f"{media}/html", "content_type")
    _refused(fetcher, f"{media}/slow", "timeout")
    assert _refused(fetcher, f"{media}/missing", "status").status_code == 404


def test_the_host_name_is_kept_and_the_connection_goes_to_a_checked_address(media):
    port = media.rsplit(":", 1)[1]
    fetcher = SafeFetcher(allowed_networks=[f"{MEDIA_HOST}/32"], resolve=lambda host, _: [MEDIA_HOST])
    try:
        fetched = fetcher.fetch(f"http://media.example:{port}/host")
    finally:
        fetcher.close()
    assert fetched.content == f"media.example:{port}".encode(), "Host header kept, the socket on the address"


def test_a_dns_answer_that_changes_between_the_check_and_the_connection_is_refused(media, internal):
    port = internal.rsplit(":", 1)[1]
    answers = iter([[MEDIA_HOST], ["127.0.0.1"]])  # a rebinding DNS: the second answer is internal
    fetcher = SafeFetcher(allowed_networks=[f"{MEDIA_HOST}/32"], resolve=lambda host, _: next(answers))
    Media.hits.clear()
    try:
        refused = _refused(fetcher, f"http://media.example:{port}/img.png", "address")
    finally:
        fetcher.close()
    assert "127.0.0.1" in refused.detail
    assert Media.hits == [], "the internal service got nothing"


def test_public_addresses_are_public():
    for address in ("8.8.8.8", "2606:4700::1111", "93.184.216.34"):
        assert is_public(ipaddress.ip_address(address))
