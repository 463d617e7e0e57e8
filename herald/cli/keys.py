"""`herald rotate-sealing-key`, `herald reseal-secrets`: a new active key for sealing tokens, and
every stored secret sealed again with it, so the old key can be dropped."""

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
               "restart the roles to seal with it, then run `herald reseal-secrets`")


@cli.command("reseal-secrets")
def reseal_secrets() -> None:
    """Seal every stored secret again with the active key; says whether a retired key is still needed.

    Run it after the roles were restarted with the new key (a role still running with the old
    ring seals new tokens with the old key); run it again until nothing is left on a retired key.
    """
    from herald.crypto import load_or_create_key
    from herald.storage import db
    from processors.accounts.reseal import reseal_credentials

    settings = Settings()
    if not settings.database_url:
        typer.echo("error: HERALD_DATABASE_URL is not set (with the embedded PostgreSQL, point it at the one "
                   "`herald run` started)", err=True)
        raise typer.Exit(2)
    cipher = load_or_create_key(settings.token_key, settings.data_dir, settings.token_keys_retired)
    pool = db.connection_pool(settings.database_url, max_size=2)
    try:
        done = reseal_credentials(pool, cipher)
    finally:
        pool.close()
    left = done.still_on_retired_keys(cipher)
    typer.echo(f"re-sealed {done.rewritten} stored secret(s) with key {cipher.active}; {done.skipped} changed "
               "meanwhile (run again)")
    typer.echo("no stored secret needs a retired key: they can be dropped" if not left and not done.skipped else
               f"{left} secret(s) were on a retired key before this run; keep the retired keys until a run says none")
