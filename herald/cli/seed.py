"""`herald seed`: the six test workspaces of seed 000, idempotently, with their API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from herald.cli.app import cli
from herald.settings import Settings


@cli.command()
def seed(rotate_keys: Annotated[bool, typer.Option(
        "--rotate-keys", help="revoke the test workspaces' keys and issue new ones (keys are shown only once)")] = False,
) -> None:
    """Create the test workspaces (free, pro, business, admin, low-credit, zero-credit) and print
    their keys. Running it again changes nothing (and shows no key again, unless --rotate-keys)."""
    import uuid

    from gateway import auth
    from herald.cli.history import tool_herald
    from herald.seed import WORKSPACES, open_command_id, seed as seed_workspaces, summary
    from herald.storage import db

    console = Console()
    settings = Settings()
    herald = tool_herald(settings)
    try:
        db.apply_ddl(herald.database_url, auth.DDL)
        outcomes = seed_workspaces(herald.app)
        table = Table("workspace", "tier", "credits", "accounts", "posts", "rules", "rejected")
        keys: list[str] = []
        for ws in WORKSPACES:
            key_id = auth.service_key_id(open_command_id(ws))
            if rotate_keys:
                with herald.pool.connection() as conn:
                    conn.execute("UPDATE gateway_api_keys SET revoked_at = now() WHERE workspace_id = %s"
                                 " AND revoked_at IS NULL", (ws.workspace_id,))
                key_id = auth.service_key_id(f"{open_command_id(ws)}/rotated/{uuid.uuid4()}")
            key = auth.issue_service_key(herald.pool, ws.workspace_id, key_id)
            s = summary(ws, outcomes[ws.workspace_id])
            rejected = ", ".join(sorted(set(s["rejected"]))) or "-"
            table.add_row(ws.workspace_id, ws.tier, str(ws.credits), str(s["accounts"]), str(s["posts"]),
                          str(s["rules"]), rejected)
            keys.append(f"{ws.workspace_id}: {key or '(issued before, shown only once; --rotate-keys issues a new one)'}")
        console.print(table)
        typer.echo("API keys (Authorization: Bearer <key>):\n" + "\n".join(keys))  # plain: never wrapped or cut
        console.print("Admin: the admin key (HERALD_ADMIN_API_KEY, or printed by `herald run`). The events reach "
                      "the read models once the relay and the projections run.")
    finally:
        herald.close()
