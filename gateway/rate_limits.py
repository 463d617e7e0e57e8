"""How fast a key, and all the keys of one workspace together, may call the gateway.

A token bucket per key and one per workspace (``rate`` requests a second on average, bursts up to
``burst``), kept in this process. Bound: each gateway process enforces the rates on its own, so
N gateway processes behind a balancer allow up to N times the rate; and at most
``max_buckets`` buckets are kept (least recently used dropped first: a dropped bucket starts
full again, which only ever lets a caller through, never refuses one wrongly).

Requests that fail authentication (no key, an unknown, revoked or expired key) spend a token of
their client address's bucket (``failed_auth``; an IPv6 address counts by its /64, which one
host usually holds whole). While that bucket is empty, every request from the address answers
429 before its key is looked up: a flood of guessed keys costs no database lookups, and a valid
key sent from that address waits too. The address is the peer's, or the one a trusted proxy
names in ``X-Forwarded-For`` (uvicorn's ``FORWARDED_ALLOW_IPS``, by default 127.0.0.1 and ::1).

Answers carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until
the bucket is full again) as in draft-ietf-httpapi-ratelimit-headers
(https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/06/), and a refusal is
429 with ``Retry-After`` (RFC 9110 §10.2.3).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # until the bucket is full
    retry_after_s: int  # until one request is allowed again (0 when allowed)

    def headers(self) -> dict[str, str]:
        found = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                 "RateLimit-Reset": str(self.reset_s)}
        if not self.allowed:
            found["Retry-After"] = str(self.retry_after_s)
        return found


class TokenBuckets:
    def __init__(self, rate_per_s: float, burst: int, max_buckets: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate, self.burst, self.max_buckets, self.clock = rate_per_s, burst, max_buckets, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # name → (tokens, at)
        self._lock = threading.Lock()

    def take(self, name: str) -> Verdict:
        """Spends one token of ``name``'s bucket if it has one."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.pop(name, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[name] = (tokens, now)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        return Verdict(
            allowed=allowed, limit=self.burst, remaining=int(tokens),
            reset_s=math.ceil((self.burst - tokens) / self.rate),
            retry_after_s=0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate)),
        )

    def peek(self, name: str) -> Verdict:
        """What ``take`` would answer, spending nothing and keeping no bucket for a new name."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(name, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        return Verdict(
            allowed=allowed, limit=self.burst, remaining=int(tokens),
            reset_s=math.ceil((self.burst - tokens) / self.rate),
            retry_after_s=0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate)),
        )

    def __len__(self) -> int:
        return len(self._buckets)


def client_bucket(host: str | None) -> str:
    """The failed-authentication bucket of a client address: IPv4 whole, IPv6 by its /64."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class RateLimits:
    """The buckets of one gateway: one per key, one per workspace."""

    per_key: TokenBuckets
    per_workspace: TokenBuckets

    @classmethod
    def of(cls, key_rate: float, key_burst: int, workspace_rate: float, workspace_burst: int,
           max_buckets: int = 100_000) -> RateLimits:
        return cls(TokenBuckets(key_rate, key_burst, max_buckets), TokenBuckets(workspace_rate, workspace_burst,
                                                                                max_buckets))
