"""Social-account credentials: the private store (vault.py), their use and refresh
(credentials.py), the proactive refresher (refresher.py) and the upgrade that filled the store
from events stored before it existed (upgrade.py)."""
