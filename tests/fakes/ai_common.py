"""What the fake AI providers share: scripted answers (a queue of raw texts the "model" returns;
when empty, a valid answer for the platforms the prompt names) and the record of request bodies."""

from __future__ import annotations

import json
import re
from collections import deque

from tests.fakes.http_fake import HttpFake

_PLATFORM = re.compile(r"^Platform: (\S+)", re.MULTILINE)


class AiFake(HttpFake):
    def __init__(self, token: str = "fake-key") -> None:
        self.answers: deque[str] = deque()
        self.bodies: list[dict] = []
        super().__init__(token)

    def answer_next(self, *texts: str) -> None:
        self.answers.extend(texts)

    def model_text(self, user_text: str) -> str:
        if self.answers:
            return self.answers.popleft()
        platforms = _PLATFORM.findall(user_text)
        return json.dumps({"captions": [{"platform": p, "text": f"Fake caption for {p}."} for p in platforms],
                           "hashtags": ["fake"]})
