"""Export the wire contracts as JSON Schema files, one per command and one per event type.

Each command file is the :class:`~schemas.commands.CommandEnvelope` with ``type`` fixed to
the command's type name and ``payload`` replaced by that command's payload model; each event
file is the :class:`~schemas.events.CloudEvent` envelope with ``type`` fixed and ``data`` the
event's data model. ``command-envelope.json`` and ``cloudevent.json`` describe the generic
envelopes. Output is deterministic (sorted keys, 2-space indent, trailing newline), so the
checked-in files in ``schemas/json/`` can be compared with what the code generates.

Regenerate the checked-in files with ``python -m schemas.export``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from schemas.commands import COMMAND_TYPES, CommandEnvelope
from schemas.events import EVENT_TYPES, CloudEvent

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "json"
COMMANDS_DIR = "commands"
EVENTS_DIR = "events"


def export(directory: Path) -> list[Path]:
    """Write every schema under ``directory`` and return the paths written, sorted.

    Stale ``.json`` files in the folders this export owns are removed, so the directory
    always holds exactly the current contracts.
    """
    documents = schema_documents()
    directory = Path(directory)
    for stale in _owned_json_files(directory):
        if stale.relative_to(directory).as_posix() not in documents:
            stale.unlink()
    written = []
    for relative, schema in sorted(documents.items()):
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema), encoding="utf-8", newline="\n")
        written.append(path)
    return written


def schema_documents() -> dict[str, dict[str, Any]]:
    """Relative file name (posix) → JSON Schema, for every contract."""
    documents = {
        "command-envelope.json": _document(CommandEnvelope),
        "cloudevent.json": _document(CloudEvent),
    }
    for type_name, payload_model in COMMAND_TYPES.items():
        model = _specialise(CommandEnvelope, type_name, "payload", payload_model, "Command")
        documents[f"{COMMANDS_DIR}/{type_name}.json"] = _document(model)
    for type_name, data_model in EVENT_TYPES.items():
        model = _specialise(CloudEvent, type_name, "data", data_model, "Event")
        documents[f"{EVENTS_DIR}/{type_name}.json"] = _document(model)
    return documents


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, indent=2) + "\n"


def _specialise(
    envelope: type[BaseModel], type_name: str, body_field: str, body_model: type[BaseModel], suffix: str
) -> type[BaseModel]:
    """The envelope with ``type`` a constant and its body field typed as ``body_model``."""
    body_description = envelope.model_fields[body_field].description or f"a {body_model.__name__}"
    return create_model(
        f"{body_model.__name__}{suffix}",
        __base__=envelope,
        __doc__=f"{envelope.__name__} carrying {type_name}.",
        type=(Literal[type_name], Field(description=f"always {type_name}")),  # type: ignore[valid-type]
        **{body_field: (body_model, Field(description=body_description))},
    )


def _document(model: type[BaseModel]) -> dict[str, Any]:
    return {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema(mode="validation")}


def _owned_json_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    owned = list(directory.glob("*.json"))
    for folder in (COMMANDS_DIR, EVENTS_DIR):
        owned.extend((directory / folder).glob("*.json"))
    return owned


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else DEFAULT_DIRECTORY
    written = export(directory)
    print(f"wrote {len(written)} JSON Schema files to {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
