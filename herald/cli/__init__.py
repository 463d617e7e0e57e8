"""The ``herald`` command: run any role, or all of them in one process; operate dead letters."""

from __future__ import annotations

from herald.cli import dlq, history, keys, roles, seed  # noqa: F401 - each registers its sub-commands
from herald.cli.app import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
