"""Dependency direction: domain/ stays free of infrastructure, schemas/ depends on pydantic only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DOMAIN_FORBIDDEN = frozenset(
    {
        "fastapi",
        "starlette",
        "uvicorn",
        "kafka",
        "psycopg",
        "psycopg_pool",
        "httpx",
        "sqlalchemy",
        "cryptography",
        "gateway",
        "processors",
        "projections",
        "herald",
    }
)
SCHEMAS_ALLOWED = frozenset(sys.stdlib_module_names) | {"pydantic", "schemas"}


def imported_modules(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in the source; relative imports stay inside."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def domain_violations(source: str, filename: str = "<source>") -> list[str]:
    return [
        f"{filename}:{line} imports {module}"
        for line, module in imported_modules(source, filename)
        if module in DOMAIN_FORBIDDEN
    ]


def schemas_violations(source: str, filename: str = "<source>") -> list[str]:
    return [
        f"{filename}:{line} imports {module}"
        for line, module in imported_modules(source, filename)
        if module not in SCHEMAS_ALLOWED
    ]


def _sources(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    return files


def _violations(package: str, check) -> list[str]:
    return [
        violation
        for path in _sources(package)
        for violation in check(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]


def test_domain_imports_no_infrastructure() -> None:
    violations = _violations("domain", domain_violations)
    assert not violations, "domain/ must not depend on infrastructure or outer layers:\n" + "\n".join(violations)


def test_schemas_import_only_stdlib_and_pydantic() -> None:
    violations = _violations("schemas", schemas_violations)
    assert not violations, "schemas/ may import only the stdlib and pydantic:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    "source",
    [
        "import kafka",
        "import kafka.admin as admin",
        "from psycopg_pool import ConnectionPool",
        "from herald.settings import Settings",
        "def f():\n    import httpx\n",
        "try:\n    from fastapi import FastAPI\nexcept ImportError:\n    pass\n",
    ],
)
def test_the_domain_check_catches_a_forbidden_import(source: str) -> None:
    assert domain_violations(source, "synthetic.py")


@pytest.mark.parametrize(
    "source",
    ["import eventsourcing", "from domain.base import Context", "from . import rejections", "import datetime, uuid"],
)
def test_the_domain_check_allows_its_own_dependencies(source: str) -> None:
    assert domain_violations(source) == []


@pytest.mark.parametrize("source", ["import eventsourcing", "from domain import tiers", "import yaml"])
def test_the_schemas_check_catches_a_non_stdlib_import(source: str) -> None:
    assert schemas_violations(source, "synthetic.py")


@pytest.mark.parametrize(
    "source",
    ["from __future__ import annotations", "import json", "from pydantic import BaseModel", "from schemas.commands import Payload"],
)
def test_the_schemas_check_allows_stdlib_pydantic_and_itself(source: str) -> None:
    assert schemas_violations(source) == []
