from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from processors.platforms.base import ErrorKind, classify_http_error, retry_after_seconds

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, ErrorKind.rate_limited),
        (401, ErrorKind.auth),
        (403, ErrorKind.auth),
        (400, ErrorKind.invalid_content),
        (413, ErrorKind.invalid_content),
        (422, ErrorKind.invalid_content),
        (408, ErrorKind.transient),
        (425, ErrorKind.transient),
        (500, ErrorKind.transient),
        (502, ErrorKind.transient),
        (503, ErrorKind.transient),
        (504, ErrorKind.transient),
        (404, ErrorKind.permanent),
        (405, ErrorKind.permanent),
        (410, ErrorKind.permanent),
        (418, ErrorKind.permanent),
    ],
)
def test_status_codes_map_to_kinds(status, kind):
    error = classify_http_error(status, {}, '{"error": "nope"}')

    assert error.kind is kind
    assert str(status) in error.detail and "nope" in error.detail


def test_retry_after_delta_seconds():
    error = classify_http_error(429, {"Retry-After": "120"}, "")

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 120.0


def test_retry_after_http_date():
    when = format_datetime(NOW + timedelta(seconds=90), usegmt=True)  # "Sun, 22 Nov 2026 12:01:30 GMT"

    error = classify_http_error(429, {"retry-after": when}, "", now=NOW)

    assert error.retry_after_s == 90.0


def test_retry_after_date_in_the_past_means_now():
    assert retry_after_seconds(format_datetime(NOW - timedelta(minutes=5), usegmt=True), now=NOW) == 0.0


def test_retry_after_obsolete_date_forms():
    assert retry_after_seconds("Sunday, 22-Nov-26 12:00:30 GMT", now=NOW) == 30.0
    assert retry_after_seconds("Sun Nov 22 12:00:45 2026", now=NOW) == 45.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5"])
def test_unusable_retry_after_is_none(value):
    headers = {} if value is None else {"Retry-After": value}
    assert classify_http_error(429, headers, "").retry_after_s is None


def test_httpx_headers_are_read_case_insensitively():
    headers = httpx.Headers({"RETRY-AFTER": "7"})
    assert classify_http_error(429, headers, "").retry_after_s == 7.0


def test_503_keeps_retry_after_and_auth_ignores_it():
    assert classify_http_error(503, {"Retry-After": "10"}, "").retry_after_s == 10.0
    assert classify_http_error(401, {"Retry-After": "10"}, "").retry_after_s is None


def test_long_bodies_are_truncated_in_the_detail():
    assert len(classify_http_error(500, {}, "x" * 10_000).detail) < 600
