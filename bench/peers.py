"""Peer baselines run beside Herald in the same bench, so a figure can be given as a ratio (absolute times on
a shared machine are noisy).

``bullmq_lateness``: BullMQ delayed jobs on Redis, with the script and the method of
``shared/peers/README.md`` (``bullmq-lateness.js N WINDOW_MS CONCURRENCY WORK_MS``: N jobs due evenly over
the window, one Worker of CONCURRENCY, each job waiting WORK_MS; lateness = start of the job's call − due).
bullmq@5 is installed once with npm into ``.herald/peers/bullmq`` (git-ignored). Without Node/npm, without
Redis at 127.0.0.1:6379, or if the install or the run fails, the result has null figures and ``skipped``
saying why; the test suite never depends on it. BullMQ's delayed jobs: https://docs.bullmq.io/guide/jobs/delayed
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The project's shared folder sits beside the checkout (CI lays a copy of it there too).
PEERS_DIR = Path(os.environ.get("HERALD_BENCH_PEERS_DIR", ROOT.parent / "shared" / "peers"))
INSTALL_DIR = ROOT / ".herald" / "peers" / "bullmq"
SCRIPT = "bullmq-lateness.js"
REDIS = ("127.0.0.1", 6379)
LEAD_S = 8  # the script schedules its first job this long after it starts


def bullmq_lateness(jobs: int, window_ms: int, concurrency: int, work_ms: int) -> dict[str, Any]:
    """{"peer", "version", "lateness_p50_ms", "lateness_p99_ms", "lateness_max_ms", "skipped"}; ``skipped`` is
    None when it ran, else the reason (and the figures are None)."""
    result: dict[str, Any] = {"peer": "bullmq", "version": None, "jobs": jobs, "window_ms": window_ms,
                              "concurrency": concurrency, "work_ms": work_ms, "lateness_p50_ms": None,
                              "lateness_p99_ms": None, "lateness_max_ms": None, "skipped": None}
    reason = _missing_prerequisite()
    if reason is None:
        reason = _install()
    if reason is not None:
        return {**result, "skipped": reason}
    # The script's own lead, the window, the work, and room for a slow machine.
    timeout_s = LEAD_S + window_ms / 1000 + jobs * work_ms / 1000 / max(1, concurrency) + 120
    try:
        done = subprocess.run(["node", SCRIPT, str(jobs), str(window_ms), str(concurrency), str(work_ms)],
                              cwd=INSTALL_DIR, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {**result, "skipped": f"bullmq-lateness.js did not finish within {timeout_s:.0f} s"}
    if done.returncode != 0:
        return {**result, "skipped": f"bullmq-lateness.js exited {done.returncode}: {_tail(done.stderr)}"}
    figures = _last_json_line(done.stdout)
    if figures is None or "lateness_ms" not in figures:
        return {**result, "skipped": f"bullmq-lateness.js printed no result line: {_tail(done.stdout)}"}
    lateness = figures["lateness_ms"]
    return {**result, "version": figures.get("version"), "lateness_p50_ms": lateness.get("p50"),
            "lateness_p99_ms": lateness.get("p99"), "lateness_max_ms": lateness.get("max")}


def _missing_prerequisite() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    if not (PEERS_DIR / SCRIPT).is_file():
        return f"no {SCRIPT} in {PEERS_DIR} (set HERALD_BENCH_PEERS_DIR)"
    if not _redis_answers():
        return f"no Redis answering PING at {REDIS[0]}:{REDIS[1]}"
    return None


def _redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _install() -> str | None:
    """Copy the script (always: it may have changed) and install bullmq@5 beside it once."""
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PEERS_DIR / SCRIPT, INSTALL_DIR / SCRIPT)
    if (INSTALL_DIR / "node_modules" / "bullmq" / "package.json").is_file():
        return None
    for step in (["npm", "init", "-y"], ["npm", "install", "--silent", "--no-audit", "--no-fund", "bullmq@5"]):
        try:
            done = subprocess.run(step, cwd=INSTALL_DIR, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(step)}` took over 300 s"
        if done.returncode != 0:
            return f"`{' '.join(step)}` failed ({done.returncode}): {_tail(done.stderr or done.stdout)}"
    return None


def _last_json_line(output: str) -> dict[str, Any] | None:
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def _tail(text: str, chars: int = 300) -> str:
    return " ".join(text.split())[-chars:] or "(no output)"


if __name__ == "__main__":
    import sys

    args = [int(a) for a in sys.argv[1:5]] or [2_000, 20_000, 50, 200]
    print(json.dumps(bullmq_lateness(*args)))
