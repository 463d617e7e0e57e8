"""concurrency: many clients scheduling into ONE workspace while the processors publish.

``--clients`` threads (8), each with its own HTTP connection, send ``--posts-per-client``
(100) schedule requests back to back, 10 destinations each, due a couple of seconds after
they are sent, so dispatching, publishing and settling run (and write the same wallet and
workspace) during the test. Every request is sent once, with an Idempotency-Key and no
retry, and every answer is counted by status: 5xx are errors (target 0), 4xx rejections are
listed by reason code, and a request without an answer (exception, timeout) is a failed
request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from bench.stack import ACCOUNTS, Stack, ms, open_workspace, percentile, post_body, reason_code


@dataclass
class Options:
    clients: int = 8
    posts_per_client: int = 100
    due_in_s: float = 2.0  # publish_at this long after the request is sent
    timeout_s: float = 30.0  # per request
    budget_s: float = 60.0  # a client sends no new request after this


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # answered requests
    statuses: dict[int, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)  # "status reason_code" of every non-2xx answer
    failures: dict[str, int] = field(default_factory=dict)  # exception type → count (no answer)
    not_sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def run(stack: Stack, opts: Options, say) -> dict[str, float | int | str | None]:
    total = opts.clients * opts.posts_per_client
    ws = open_workspace(stack, "bench-concurrency", credits=ACCOUNTS * total + 1_000)
    tally = Tally()
    go = threading.Barrier(opts.clients + 1)
    deadline = [0.0]

    def client(c: int) -> None:
        with stack.client(ws.api_key, timeout_s=opts.timeout_s) as http:
            http.get(ws.path("wallet"))  # connect before the start line
            go.wait()
            for i in range(opts.posts_per_client):
                if time.monotonic() > deadline[0]:
                    with tally.lock:
                        tally.not_sent += opts.posts_per_client - i
                    return
                started = time.perf_counter()
                try:
                    r = http.post(ws.path("posts"), json=post_body(ws, f"concurrent {c}-{i}", opts.due_in_s),
                                  headers={"Idempotency-Key": f"concurrent-{c}-{i}"})
                except httpx.HTTPError as error:
                    with tally.lock:
                        name = type(error).__name__
                        tally.failures[name] = tally.failures.get(name, 0) + 1
                    continue
                elapsed = time.perf_counter() - started
                with tally.lock:
                    tally.latencies.append(elapsed)
                    tally.statuses[r.status_code] = tally.statuses.get(r.status_code, 0) + 1
                    if r.status_code >= 300:
                        key = f"{r.status_code} {reason_code(r)}"
                        tally.reasons[key] = tally.reasons.get(key, 0) + 1

    threads = [threading.Thread(target=client, args=(c,), name=f"bench-client-{c}", daemon=True)
               for c in range(opts.clients)]
    deadline[0] = time.monotonic() + opts.budget_s + 5  # + connecting
    for thread in threads:
        thread.start()
    go.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=opts.budget_s + opts.timeout_s + 30)
    seconds = time.perf_counter() - started

    accepted = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    errors = sum(n for status, n in tally.statuses.items() if status >= 500)
    rejected = sum(n for status, n in tally.statuses.items() if 400 <= status < 500)
    failed = sum(tally.failures.values())
    answered = sum(tally.statuses.values())
    rejected_codes = sorted({key.split(" ", 1)[1] for key in tally.reasons if 400 <= int(key.split(" ", 1)[0]) < 500})
    error_codes = sorted({key.split(" ", 1)[1] for key in tally.reasons if int(key.split(" ", 1)[0]) >= 500})
    p50, p99 = percentile(tally.latencies, 50), percentile(tally.latencies, 99)

    say(f"concurrency: {opts.clients} clients x {opts.posts_per_client} posts ({ACCOUNTS} destinations each) into one"
        f" workspace in {seconds:.1f} s: {answered} answered ({answered / seconds:,.1f}/s), statuses"
        f" {dict(sorted(tally.statuses.items()))}")
    say(f"concurrent_schedule_errors: {errors} (5xx answers; target 0{'' if not error_codes else ', reason codes ' + ', '.join(error_codes)})")
    say(f"concurrent_schedule_accepted: {accepted}")
    say(f"concurrent_schedule_rejected: {rejected} (4xx; reason codes: {', '.join(rejected_codes) or 'none'})")
    say(f"concurrent_schedule_failed_requests: {failed} (no answer: exception or timeout"
        f"{'; ' + str(tally.failures) if tally.failures else ''})"
        + (f"; {tally.not_sent} not sent within the {opts.budget_s:.0f} s budget" if tally.not_sent else ""))
    say(f"concurrency: every request answered: {'yes' if failed == 0 and tally.not_sent == 0 else 'NO'}")
    say(f"concurrency: schedule latency under concurrency p50 {ms(p50):,.1f} ms, p99 {ms(p99):,.1f} ms")
    if tally.reasons:
        say(f"concurrency: non-2xx answers by reason: {dict(sorted(tally.reasons.items()))}")
    return {
        "concurrent_schedule_requests": total,
        "concurrent_schedule_errors": errors,
        "concurrent_schedule_accepted": accepted,
        "concurrent_schedule_rejected": rejected,
        "concurrent_schedule_rejected_reason_codes": ",".join(rejected_codes),
        "concurrent_schedule_error_reason_codes": ",".join(error_codes),
        "concurrent_schedule_failed_requests": failed,
        "concurrent_schedule_not_sent": tally.not_sent,
        "concurrent_schedule_p50_ms": None if not tally.latencies else ms(p50),
        "concurrent_schedule_p99_ms": None if not tally.latencies else ms(p99),
        "concurrent_schedule_answers_per_s": round(answered / seconds, 1),
    }
