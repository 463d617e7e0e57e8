"""Operating on history: rebuilding read models from the event store, republishing events."""
