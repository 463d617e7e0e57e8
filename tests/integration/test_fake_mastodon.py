"""The fake Mastodon's process mode and inspection endpoints, which benches and chaos runs rely on."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.mastodon_server import FakeMastodon


@pytest.fixture
def fake_process(tmp_path: Path):
    port_file = tmp_path / "port"
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.mastodon_server", "--port", "0",
                                "--latency-ms", "150", "--port-file", str(port_file)],
                               cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert process.poll() is None, "the fake exited before writing its port"
            assert time.monotonic() < deadline, "the fake wrote no port"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


def post(http: httpx.Client, token: str, key: str, text: str) -> httpx.Response:
    return http.post("/api/v1/statuses", headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                     json={"status": text})


def test_process_mode_records_posts_and_counts_double_posts(fake_process):
    with httpx.Client(base_url=fake_process, timeout=10) as http:
        first = post(http, "any-token", "key-1", "hello")
        again = post(http, "any-token", "key-1", "hello")  # same key: answered with the same status
        other_key = post(http, "any-token", "key-2", "hello")  # a second status with the same text
        other_account = post(http, "another-token", "key-1", "hello")  # another account: no double post
        stats = http.get("/_fake/stats").json()
        posts = http.get("/_fake/posts").json()
        tail = http.get("/_fake/posts", params={"since": 3}).json()

    assert first.status_code == again.status_code == other_key.status_code == other_account.status_code == 200
    assert again.json()["id"] == first.json()["id"] != other_key.json()["id"]
    assert stats["requests"] == 4 and stats["posts"] == 3
    assert stats["double_posts_by_key"] == 1 and stats["double_posts_by_text"] == stats["double_posts"] == 1
    assert [(p["token"], p["idempotency_key"], p["text"]) for p in posts] == [
        ("any-token", "key-1", "hello"), ("any-token", "key-1", "hello"),
        ("any-token", "key-2", "hello"), ("another-token", "key-1", "hello")]
    assert [p["status_id"] for p in posts[:3]] == [first.json()["id"], first.json()["id"], other_key.json()["id"]]
    assert all(p["answered_at"] - p["received_at"] >= 0.15 for p in posts), "every post waits the latency"
    assert tail == posts[3:]


def test_only_listed_tokens_are_valid_unless_any_is_accepted():
    with FakeMastodon(valid_tokens={"listed"}) as strict, httpx.Client(base_url=strict.base_url) as http:
        assert post(http, "unlisted", "k", "x").status_code == 401
        assert post(http, "listed", "k", "x").status_code == 200
        [rejected, accepted] = strict.received()
        assert rejected["http_status"] == 401 and rejected["status_id"] is None
        assert accepted["status_id"] == strict.statuses[0]["id"]
