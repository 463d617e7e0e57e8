"""A short chaos run (``make chaos`` is the long one, ``bench/chaos.py`` the logic): every role a
process of its own, the fake Mastodon a process answering after 200 ms, posts due while role
processes are killed with SIGKILL at random moments (the publisher inside a platform call among
them) and started again. Afterwards nothing is posted twice, every destination and every credit
hold has ended exactly once, and every wallet equals its ledger."""

from __future__ import annotations

import json

import pytest

from bench import chaos

pytestmark = pytest.mark.e2e

OPTIONS = chaos.Options(posts=40, destinations=2, workspaces=2, kills=6, latency_ms=200, lead_s=6.0, spread_s=10.0,
                        mid_call_share=0.4, settle_timeout_s=75.0, stall_s=30.0,
                        processes={"gateway": 1, "handler": 1, "relay": 1, "processors": 2, "projections": 1})


def test_killed_roles_neither_lose_nor_double_anything(settings, tmp_path):
    report = chaos.run(settings, tmp_path, OPTIONS, say=print)
    print(json.dumps(report))
    assert report["kills"] == OPTIONS.kills
    assert report["mid_call_kills"], "no kill caught the publisher inside a platform call"
    assert report["posts_scheduled"] == OPTIONS.posts and report["destinations"] == OPTIONS.posts * OPTIONS.destinations
    assert report["double_posts"] == 0 and report["fake_double_posts"] == 0
    assert report["destinations_not_ended"] == 0, report["not_ended_by_status"]
    assert report["holds_not_ended"] == 0 and report["holds_ended_twice"] == 0
    assert report["ledger_mismatches"] == 0, report["ledger_mismatch_details"]
    assert report["failed"] == [], report
