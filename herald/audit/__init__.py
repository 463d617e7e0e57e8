"""Audit: the history of an aggregate from the event store, explained."""
