"""Throughput benchmark: Herald's handler, relay and projection against raw baselines.

Run with ``make bench`` (or ``python -m bench``). Every run uses a fresh PostgreSQL database
(``herald_bench_<hex>``, dropped at the end) and its own embedded Tansu broker and topic prefix.
The last line printed is one JSON object with every figure.
"""
