"""The platform names are one list (the commands' Platform enum and the content rules agree), and the
registry takes only adapters that offer the whole port."""

import pytest

from domain.post.platform_rules import PLATFORMS
from processors.platforms.base import AdapterRegistry
from schemas.commands import Platform


def test_every_platform_a_connect_may_name_has_content_rules():
    assert {str(p) for p in Platform} == set(PLATFORMS)


def test_the_registry_refuses_an_adapter_that_lacks_part_of_the_port():
    class Incomplete:
        platform = "bluesky"
        rate_budgets = ()
        token_refresh = None

        def publish(self, request): ...

        def reconcile(self, request): ...

    with pytest.raises(TypeError, match="Incomplete lacks required_settings, capabilities"):
        AdapterRegistry([Incomplete()])
