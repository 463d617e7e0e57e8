"""Secrets never shown: what a stored, logged or listed body looks like with its secrets removed.

A secret is the value of a field named in ``SECRET_FIELDS`` (a platform token, sealed or not).
``redact`` walks parsed JSON; ``redact_text`` handles text that may hold such a field: a JSON
document, or a message quoting one (a pydantic error repeats its input, ``{'access_token': '…'}``).
"""

from __future__ import annotations

import json
import re
from typing import Any

SECRET_FIELDS = frozenset({"access_token", "refresh_token", "sealed_token", "client_secret", "token", "password"})
REDACTED = "[redacted]"

# "field": "value" and 'field': 'value' (JSON, Python reprs), escaped quotes inside allowed.
_QUOTED = re.compile(
    r"""(?P<q>["'])(?P<name>""" + "|".join(sorted(SECRET_FIELDS)) + r""")(?P=q)(?P<sep>\s*[:=]\s*)"""
    r"""(?P<vq>["'])(?:\\.|(?!(?P=vq)).)*(?P=vq)""",
    re.DOTALL,
)


# A pydantic error names the field on one line and quotes its input on the next:
#   access_token
#     Extra inputs are not permitted [type=extra_forbidden, input_value='…', input_type=str]
_FIELD_ERROR = re.compile(
    r"(?m)^(?P<loc>[\w.\[\]]*\b(?:" + "|".join(sorted(SECRET_FIELDS)) + r")\b[\w.\[\]]*)\n"
    r"(?P<body>[^\n]*?input_value=)(?P<value>.*?)(?P<tail>, input_type=)"
)


def carries_secret(value: Any) -> bool:
    """Whether parsed JSON holds a non-empty secret field anywhere."""
    if isinstance(value, dict):
        return any((k in SECRET_FIELDS and v not in (None, "")) or carries_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(carries_secret(v) for v in value)
    return False


def redact(value: Any) -> Any:
    """A copy of parsed JSON with every non-empty secret field's value replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_FIELDS and v not in (None, "") else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_text(text: str | None) -> str | None:
    """``text`` with secret values removed: parsed and re-serialised when it is JSON, else every
    quoted ``"field": "value"`` of a secret field replaced."""
    if not text:
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, (dict, list)):
        return json.dumps(redact(parsed), separators=(",", ":"), ensure_ascii=False)
    text = _FIELD_ERROR.sub(lambda m: f"{m['loc']}\n{m['body']}'{REDACTED}'{m['tail']}", text)
    return _QUOTED.sub(lambda m: f"{m['q']}{m['name']}{m['q']}{m['sep']}{m['vq']}{REDACTED}{m['vq']}", text)
