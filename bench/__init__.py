"""Benchmarks: ``make bench`` (``python -m bench [throughput] [history] [concurrency]``).

throughput: Herald's handler, relay and projection against raw library baselines.
history: schedule, wallet and queue latency at 10 and at ``--history-posts`` published posts of history.
concurrency: many HTTP clients scheduling into one workspace while the processors publish.

Every run uses its own embedded Tansu broker; each scenario a fresh PostgreSQL database
(``herald_bench_…``, dropped at the end) and topic prefix. history and concurrency run Herald
in-process as ``herald run`` does (every loop plus the gateway on a free port) and talk to it
over HTTP (bench/stack.py). One line per figure; the last line is one JSON object with every figure.
"""
