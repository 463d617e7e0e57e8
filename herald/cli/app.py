"""The ``herald`` command itself; its sub-commands live one module each beside it."""

from __future__ import annotations

import typer

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Herald: schedule and publish social-media posts.")
