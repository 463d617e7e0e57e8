"""`herald rotate-sealing-key`: a new active key for sealing social-account tokens."""

from __future__ import annotations

import base64
import json
import os

import typer

from herald.cli.app import cli
from herald.crypto import key_id, rotate_data_dir_key
from herald.settings import Settings


@cli.command("rotate-sealing-key")
def rotate_sealing_key() -> None:
    """Make a new key the one that seals tokens; the old one stays in the ring and still unseals.

    With the key ring in the data directory (HERALD_TOKEN_KEY unset) it is rotated in place;
    restart the roles to seal with the new key. With HERALD_TOKEN_KEY set, a new key is printed
    with the settings to deploy.
    """
    settings = Settings()
    if settings.token_key:
        new = base64.b64encode(os.urandom(32)).decode()
        retired = [settings.token_key, *settings.token_keys_retired]
        typer.echo("HERALD_TOKEN_KEY is configured: deploy these settings to every role, then restart them:")
        typer.echo(f"HERALD_TOKEN_KEY={new}")
        typer.echo(f"HERALD_TOKEN_KEYS_RETIRED='{json.dumps(retired)}'")
        typer.echo(f"new key id {key_id(base64.b64decode(new))}")
        return
    if not (settings.data_dir / "token.key").exists():
        typer.echo(f"error: no key ring in {settings.data_dir} (token.key); nothing to rotate", err=True)
        raise typer.Exit(2)
    old, new = rotate_data_dir_key(settings.data_dir)
    typer.echo(f"sealing key rotated in {settings.data_dir}: {old} retired (still unseals), {new} active; "
               "restart the roles to seal with it")
