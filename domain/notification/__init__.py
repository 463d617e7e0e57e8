from domain.notification.aggregate import NotificationDelivery

__all__ = ["NotificationDelivery"]
