"""Command records: the first outcome of each command id."""

from domain.command.record import CommandRecord

__all__ = ["CommandRecord"]
