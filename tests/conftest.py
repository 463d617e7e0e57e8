"""The shared fixtures live in tests/support/fixtures.py (a plugin), the helpers in tests/support."""

pytest_plugins = ["tests.support.fixtures"]
