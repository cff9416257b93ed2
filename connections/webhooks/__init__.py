"""Provider webhooks: verify the signature, record durably, then route (connections/webhooks/routing.py)."""
