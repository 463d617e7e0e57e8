"""Notifications delivered: webhook endpoints per workspace and the deliveries of notices to them."""
