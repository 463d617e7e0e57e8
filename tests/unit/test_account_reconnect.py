"""The social account's credential lifecycle in the domain: connected with a credential version
(never a token), marked needs_reconnect, its destinations skipped at attempt start, reconnected."""

from __future__ import annotations

from datetime import timedelta

from domain.account import SocialAccount
from schemas import commands as cmd
from schemas import events as ev
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture
from tests.unit.test_domain import OTHER_WS, WS, Herald

ACC = "acc-m"


def _connected(make_app: AppFactory) -> Herald:
    h = Herald(make_app)
    h.open(tier="pro")
    h.ok(cmd.GrantCredits(amount=10))
    h.ok(cmd.ConnectSocialAccount(social_account_id=ACC, platform=cmd.Platform.mastodon, handle="@m",
                                  instance_url="https://m.example", credential_version="v1"))
    return h


def _schedule_and_start(h: Herald, post_id: str) -> str:
    h.ok(cmd.SchedulePost(post_id=post_id, text="hello", destinations=[ACC], publish_at=h.now + timedelta(minutes=1)))
    h.advance(60)
    return h.ok(cmd.StartPublishAttempt(post_id=post_id, destination_id=ACC, attempt=1))["status"]


def test_events_carry_the_credential_version_and_no_token(make_app):
    h = _connected(make_app)
    (connected,) = h.events_of("herald.social_account.connected.v1")
    assert connected["credential_version"] == "v1" and "sealed_token" not in connected
    _schedule_and_start(h, "p1")
    (started,) = h.events_of("herald.post.attempt_started.v1")
    assert "sealed_token" not in started


def test_a_needs_reconnect_account_is_skipped_at_attempt_start_and_a_reconnect_clears_it(make_app):
    h = _connected(make_app)
    h.ok(cmd.MarkAccountNeedsReconnect(social_account_id=ACC, reason="invalid_grant", credential_version="v1"))
    assert h.app.find(SocialAccount, ACC).needs_reconnect == "invalid_grant"
    assert _schedule_and_start(h, "p1") == "skipped"
    (skipped,) = h.events_of("herald.post.destination_skipped.v1")
    assert skipped["reason"] == "account_needs_reconnect"
    assert not h.events_of("herald.post.attempt_started.v1")

    result = h.ok(cmd.ConnectSocialAccount(social_account_id=ACC, platform=cmd.Platform.mastodon, handle="@m",
                                           credential_version="v2"))
    assert result["reconnected"] is True
    account = h.app.find(SocialAccount, ACC)
    assert account.needs_reconnect == "" and account.credential_version == "v2"
    assert _schedule_and_start(h, "p2") == "attempting"
    assert len(h.workspace().accounts) == 1, "a reconnect links nothing new"


def test_a_mark_for_credentials_already_replaced_changes_nothing(make_app):
    h = _connected(make_app)
    h.ok(cmd.ConnectSocialAccount(social_account_id=ACC, platform=cmd.Platform.mastodon, handle="@m",
                                  credential_version="v2"))
    result = h.ok(cmd.MarkAccountNeedsReconnect(social_account_id=ACC, reason="invalid_grant", credential_version="v1"))
    assert result["needs_reconnect"] is None
    assert not h.events_of(ev.SocialAccountNeedsReconnect.type)
    h.ok(cmd.MarkAccountNeedsReconnect(social_account_id=ACC, reason="invalid_grant", credential_version="v2"))
    h.ok(cmd.MarkAccountNeedsReconnect(social_account_id=ACC, reason="invalid_grant", credential_version="v2"))
    assert len(h.events_of(ev.SocialAccountNeedsReconnect.type)) == 1, "marked once"


def test_connecting_an_existing_account_without_new_credentials_or_from_another_workspace_is_refused(make_app):
    h = _connected(make_app)
    h.open(OTHER_WS, tier="pro")
    h.rejected(cmd.ConnectSocialAccount(social_account_id=ACC, platform=cmd.Platform.mastodon, handle="@m"),
               "account_exists")
    h.rejected(cmd.ConnectSocialAccount(social_account_id=ACC, platform=cmd.Platform.mastodon, handle="@m",
                                        credential_version="v1"), "account_exists")  # the one it has
    h.rejected(cmd.ConnectSocialAccount(social_account_id=ACC, platform=cmd.Platform.sandbox, handle="@m",
                                        credential_version="v9"), "account_exists")  # another platform
    h.rejected(cmd.ConnectSocialAccount(social_account_id=ACC, platform=cmd.Platform.mastodon, handle="@m",
                                        credential_version="v9"), "account_exists", workspace=OTHER_WS)
    h.rejected(cmd.MarkAccountNeedsReconnect(social_account_id=ACC, reason="x"), "unknown_social_account",
               workspace=OTHER_WS)
    assert h.app.find(SocialAccount, ACC).credential_version == "v1"


def test_old_events_with_a_sealed_token_are_read_without_it():
    old = {"social_account_id": "a", "platform": "mastodon", "handle": "@a", "instance_url": None,
           "sealed_token": "c2VhbGVk"}
    parsed = ev.parse_event(ev.SocialAccountConnected.type, old)
    assert parsed.credential_version is None and "sealed_token" not in parsed.model_dump()
    assert ev.public_data(old) == {k: v for k, v in old.items() if k != "sealed_token"}
