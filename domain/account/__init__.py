"""Social accounts that posts are published to."""

from domain.account.aggregate import SocialAccount

__all__ = ["SocialAccount"]
