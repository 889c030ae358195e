"""Virtual API keys and their rate limits (docs/operations.md).

``store.py`` keeps the keys on the state port (hashed), ``limits.py`` the shared token buckets,
``service.py`` serves ``switchboard.v1.KeyService``, ``client.py`` calls it (gateway, CLI).
"""
