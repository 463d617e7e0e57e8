"""Command type → the handler that decides it. One handler per command, found by payload type.

A handler is ``(aggregates, ctx, payload) -> (changed aggregates, result)``: it loads what it
needs through ``aggregates`` (the application), decides, and raises ``Rejected`` to refuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

from schemas import commands as cmd

if TYPE_CHECKING:
    from domain.application import HeraldApplication
    from domain.base import Context, HeraldAggregate

P = TypeVar("P", bound=cmd.Payload)
Outcome = tuple[list["HeraldAggregate"], dict[str, Any]]
Handler = Callable[["HeraldApplication", "Context", Any], Outcome]

HANDLERS: dict[type[cmd.Payload], Handler] = {}


def handles(payload_type: type[P]) -> Callable[[Callable[[HeraldApplication, Context, P], Outcome]], Handler]:
    def register(handler: Callable[[HeraldApplication, Context, P], Outcome]) -> Handler:
        if payload_type in HANDLERS:
            raise RuntimeError(f"{payload_type.__name__} already has a handler")
        HANDLERS[payload_type] = handler
        return handler

    return register


def handler_for(payload: cmd.Payload) -> Handler:
    return HANDLERS[type(payload)]


def assert_complete() -> None:
    """Every command type has its handler (the handler modules register themselves on import)."""
    missing = [t.__name__ for t in cmd.COMMAND_TYPE_OF if t not in HANDLERS]
    if missing:
        raise RuntimeError(f"commands without a handler: {missing}")
