"""The admin console, served by the gateway under ``/console`` (docs/console.md)."""

from gateway.console.app import create

__all__ = ["create"]
