"""The checked-in JSON Schemas in schemas/json/ are exactly what the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.commands import COMMAND_TYPES
from schemas.events import EVENT_TYPES
from schemas.export import DEFAULT_DIRECTORY, export

CHECKED_IN = DEFAULT_DIRECTORY
REGENERATE = "regenerate them with `python -m schemas.export` and commit schemas/json/"


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.json"))}


def test_checked_in_schemas_match_the_code(tmp_path: Path) -> None:
    written = export(tmp_path)
    generated = _files(tmp_path)
    checked_in = _files(CHECKED_IN)
    assert sorted(generated) == sorted(p.relative_to(tmp_path).as_posix() for p in written)

    missing = sorted(set(generated) - set(checked_in))
    extra = sorted(set(checked_in) - set(generated))
    changed = sorted(
        name
        for name in set(generated) & set(checked_in)
        if generated[name].read_bytes() != checked_in[name].read_bytes()
    )
    problems = [
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("missing from schemas/json (the code defines them)", missing),
            ("extra in schemas/json (the code no longer defines them)", extra),
            ("changed (checked-in file differs from the generated one)", changed),
        )
        if names
    ]
    assert not problems, "JSON Schemas drifted from schemas/: " + "; ".join(problems) + f". {REGENERATE}"


def test_every_command_and_event_type_has_a_schema_with_its_type_pinned(tmp_path: Path) -> None:
    export(tmp_path)
    expected = (
        {f"commands/{name}.json": name for name in COMMAND_TYPES}
        | {f"events/{name}.json": name for name in EVENT_TYPES}
    )
    for relative, type_name in expected.items():
        schema = json.loads((tmp_path / relative).read_text())
        assert schema["properties"]["type"]["const"] == type_name, relative
    assert (tmp_path / "command-envelope.json").is_file()
    assert (tmp_path / "cloudevent.json").is_file()


def test_export_is_deterministic_and_prunes_stale_files(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in export(tmp_path)}
    stale = tmp_path / "events" / "herald.gone.v1.json"
    stale.write_text("{}\n")
    second = {p.name: p.read_bytes() for p in export(tmp_path)}
    assert first == second
    assert not stale.exists()
    sample = (tmp_path / "commands" / "schedule_post.v1.json").read_text()
    assert sample.endswith("}\n") and sample.startswith('{\n  "$defs"')
