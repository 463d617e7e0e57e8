"""The platform names are one list: the commands' Platform enum and the content rules agree."""

from domain.post.platform_rules import PLATFORMS
from schemas.commands import Platform


def test_every_platform_a_connect_may_name_has_content_rules():
    # The generic webhook carries whatever it is given: its rules come with its adapter (part B of issue 10).
    assert {str(p) for p in Platform} - {"webhook"} == set(PLATFORMS)
