"""The webhook retry delays: full jitter under an exponential ceiling, capped, never below a second;
and the signature is the one the reference library verifies."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from processors.notifications.deliveries import RetryPolicy
from processors.notifications.webhooks import new_secret, signed_headers


@given(attempts=st.integers(min_value=1, max_value=10_000), rand=st.floats(min_value=0, max_value=1),
       base=st.floats(min_value=0.1, max_value=600), cap=st.floats(min_value=1, max_value=86_400))
def test_a_delay_stays_under_the_exponential_ceiling_and_the_cap(attempts, rand, base, cap):
    policy = RetryPolicy(base_s=base, cap_s=cap)
    delay = policy.delay_s(attempts, rand=lambda: rand)
    ceiling = min(cap, base * 2 ** min(attempts - 1, 40))
    assert 1.0 <= delay <= max(1.0, ceiling)


def test_the_ceiling_doubles_per_attempt_until_the_cap():
    policy = RetryPolicy(base_s=30, cap_s=3600)
    assert [policy.delay_s(n, rand=lambda: 1.0) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600,
                                                                          3600]


def test_every_signature_verifies_with_its_own_secret():
    old, new = new_secret(), new_secret()
    body = b'{"type":"notice.low_credits","timestamp":"2026-01-01T00:00:00Z","data":{}}'
    headers = signed_headers([new, old], "msg_1", int(time.time()), body)
    assert headers["webhook-signature"].count("v1,") == 2 and " " in headers["webhook-signature"]
    for secret in (old, new):
        Webhook(secret).verify(body, headers)


def test_the_verification_snippet_in_the_docs_accepts_herald_signatures_and_refuses_others():
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "notifications.md").read_text()
    [snippet] = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 - our own documentation
    secret, other = new_secret(), new_secret()
    body = b'{"type":"notice.post_failed","timestamp":"2026-01-01T00:00:00Z","data":{}}'
    headers = signed_headers([secret], "msg_2", int(time.time()), body)
    scope["verify"](secret, headers, body)
    assert scope["verify_by_hand"](secret, headers, body) is True
    assert scope["verify_by_hand"](other, headers, body) is False
    assert scope["verify_by_hand"](secret, headers, body + b" ") is False
    stale = signed_headers([secret], "msg_2", int(time.time()) - 3600, body)
    assert scope["verify_by_hand"](secret, stale, body) is False
