"""Properties the part-B adapters' publishing depends on: Bluesky facets address the right UTF-8
bytes whatever precedes them, record keys are valid TIDs fixed by the attempt key, and webhook
signatures agree with the reference Standard Webhooks library."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from processors.platforms.bluesky import facets, tid_for
from processors.platforms.webhook import secret_key, sign

_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
# Any text around the link, but separated from it by whitespace, as people write links.
_words = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_no_at = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="@＠"), max_size=40)
_path = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_/", max_size=20)


@given(before=_words, after=_words, path=_path)
def test_link_facets_cover_exactly_the_links_utf8_bytes(before, after, path):
    url = f"https://example.com/{path}".rstrip("/") + "/x"
    text = f"{before} {url} {after}"

    found = [f for f in facets(text, lambda handle: None) if f["features"][0]["uri"] == url]

    assert found, "the link got a facet"
    data = text.encode("utf-8")
    for facet in found:
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        assert data[start:end].decode("utf-8") == url


@given(before=_no_at, handle=st.from_regex(r"[a-z][a-z0-9]{0,10}\.bsky\.social", fullmatch=True))
def test_mention_facets_cover_the_handle_and_carry_the_resolved_did(before, handle):
    text = f"{before} @{handle} hi"

    [facet] = [f for f in facets(text, lambda h: f"did:plc:{h}") if "#mention" in f["features"][0]["$type"]]

    data = text.encode("utf-8")
    assert data[facet["index"]["byteStart"]:facet["index"]["byteEnd"]].decode() == f"@{handle}"
    assert facet["features"][0]["did"] == f"did:plc:{handle}"


@given(st.text(min_size=1, max_size=200))
def test_record_keys_are_valid_tids_fixed_by_the_attempt_key(key):
    assert _TID.match(tid_for(key))
    assert tid_for(key) == tid_for(key)


@given(key=st.binary(min_size=24, max_size=64), msg_id=st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1,
                                                                   max_size=40),
       timestamp=st.integers(min_value=1_600_000_000, max_value=2_000_000_000), body=st.binary(max_size=500))
def test_webhook_signatures_match_the_reference_library(key, msg_id, timestamp, body):
    secret = "whsec_" + base64.b64encode(key).decode()

    ours = sign(secret_key(secret), msg_id, timestamp, body)

    assert ours == Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body)
