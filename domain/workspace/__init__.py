"""Workspaces: tier and limits, linked social accounts, the queue of waiting posts."""

from domain.workspace.aggregate import Workspace

__all__ = ["Workspace"]
