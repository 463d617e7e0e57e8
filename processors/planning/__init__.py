"""Planning processors: the daily top-off of planned slots and series occurrences (docs/calendar.md)."""
