"""The connect side of the OAuth client: PKCE S256 (RFC 7636), state, the authorization URL
(RFC 6749 §4.1.1), and the Mastodon adapter's OAuth description."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from processors.platforms import oauth
from processors.platforms.base import Pkce
from processors.platforms.mastodon import MastodonAdapter
from processors.platforms.sandbox import SandboxAdapter

UNRESERVED = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.1


def test_s256_matches_rfc7636_appendix_b():
    assert oauth.s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_new_pkce_verifiers_are_well_formed_fresh_and_match_their_challenge():
    pairs = [oauth.new_pkce() for _ in range(50)]
    assert all(UNRESERVED.match(p.verifier) for p in pairs)
    assert len({p.verifier for p in pairs}) == 50
    assert all(p.challenge == oauth.s256_challenge(p.verifier) and p.method == "S256" for p in pairs)
    assert pairs[0].verifier not in repr(pairs[0]), "the verifier never shows in a repr (logs)"


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=43,
               max_size=128))
def test_a_challenge_is_43_base64url_characters_without_padding(verifier):
    challenge = oauth.s256_challenge(verifier)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge)


def test_states_are_unguessable_and_distinct():
    states = {oauth.new_state() for _ in range(100)}
    assert len(states) == 100 and all(len(s) >= 43 for s in states)


def test_authorization_url_carries_the_request_and_keeps_the_endpoints_query():
    url = oauth.authorization_url("https://social.example/oauth/authorize?lang=de", client_id="herald",
                                  redirect_uri="https://app.example/cb?x=1&y=2", state="st4te",
                                  scopes=("write:statuses", "read:accounts"), code_challenge="abc")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "social.example", "/oauth/authorize")
    query = parse_qs(parts.query)
    assert query == {"lang": ["de"], "response_type": ["code"], "client_id": ["herald"],
                     "redirect_uri": ["https://app.example/cb?x=1&y=2"], "scope": ["write:statuses read:accounts"],
                     "state": ["st4te"], "code_challenge": ["abc"], "code_challenge_method": ["S256"]}
    assert "scope=write%3Astatuses%20read%3Aaccounts" in parts.query, "scopes space-separated, %20-encoded"


def test_authorization_url_without_pkce_or_scopes_names_neither():
    query = parse_qs(urlsplit(oauth.authorization_url("https://p.example/auth", client_id="c",
                                                      redirect_uri="https://a/cb", state="s")).query)
    assert set(query) == {"response_type", "client_id", "redirect_uri", "state"}


def test_mastodon_describes_its_oauth_per_instance_and_the_sandbox_has_none():
    described = MastodonAdapter.token_refresh
    assert described.connectable and described.per_instance and described.pkce == Pkce.supported
    assert described.authorization_endpoint("https://m.example/") == "https://m.example/oauth/authorize"
    assert described.token_endpoint("https://m.example") == "https://m.example/oauth/token"
    assert "write:statuses" in described.scopes and "client_secret_post" in described.client_auth
    assert SandboxAdapter.token_refresh is None
