"""The credit wallet: grants and pending holds."""

from domain.wallet.aggregate import Grant, Hold, Wallet

__all__ = ["Grant", "Hold", "Wallet"]
