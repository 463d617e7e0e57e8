"""Secrets never shown: redaction of parsed JSON, of JSON text, and of error messages that
quote their input (a pydantic ValidationError repeats the payload, token included)."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from herald.messaging.consumer import describe
from herald.redaction import REDACTED, carries_secret, redact, redact_text
from schemas import commands as cmd

TOKEN = "tok-s3cret"


def test_parsed_json_is_redacted_at_any_depth():
    envelope = {"type": "connect_social_account.v1", "payload": {"access_token": TOKEN, "handle": "a"},
                "list": [{"sealed_token": "k:abc"}], "empty": {"access_token": ""}}
    assert carries_secret(envelope) and not carries_secret({"payload": {"access_token": "", "handle": "a"}})
    redacted = redact(envelope)
    assert TOKEN not in json.dumps(redacted) and "k:abc" not in json.dumps(redacted)
    assert redacted["payload"] == {"access_token": REDACTED, "handle": "a"} and redacted["empty"] == {"access_token": ""}
    assert envelope["payload"]["access_token"] == TOKEN, "the original is untouched"


def test_text_is_redacted_whether_json_or_a_message():
    assert TOKEN not in redact_text(json.dumps({"payload": {"access_token": TOKEN}}))
    message = f"""bad: {{'access_token': '{TOKEN}', "refresh_token": "r-{TOKEN}", 'handle': 'a'}}"""
    assert TOKEN not in redact_text(message) and "'handle': 'a'" in redact_text(message)
    assert redact_text("nothing secret") == "nothing secret" and redact_text(None) is None


class Connect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str
    handle: str
    refresh_token: int | None = None


@pytest.mark.parametrize("payload", [
    {"handle": "a", "access_token": TOKEN},  # missing platform: the whole input is quoted; and an extra field
    {"platform": "x", "handle": "a", "refresh_token": TOKEN},  # the field's own error quotes its value
    {"platform": "x", "handle": "a", "nested": {"access_token": TOKEN}},
])
def test_a_validation_error_quoting_a_token_is_described_without_it(payload):
    with pytest.raises(ValidationError) as raised:
        Connect.model_validate(payload)
    assert TOKEN in str(raised.value), "pydantic does quote the input"
    described = describe(raised.value)
    assert TOKEN not in described and described.startswith("ValidationError:") and REDACTED in described


def test_the_connect_command_quoting_a_token_is_described_without_it():
    with pytest.raises(ValidationError) as raised:
        cmd.ConnectSocialAccount.model_validate({"handle": "a", "access_token": TOKEN})
    assert TOKEN not in describe(raised.value)
