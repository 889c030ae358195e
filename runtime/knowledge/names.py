"""What a collection may be called: the one rule, for the stores and for the edge that checks a path first.

Apart from :mod:`runtime.knowledge.store` so that the gateway can check a name without importing
the vector and embedding machinery behind the store.
"""

from __future__ import annotations

import re

from runtime.errors import InvalidKnowledgeRequestError

COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
"""Used with ``fullmatch``: ``match`` with ``$`` would accept a trailing newline (a directory named ``abc\\n``)."""


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.fullmatch(name or ""):
        raise InvalidKnowledgeRequestError(
            f"invalid collection name {name[:80]!r}: "
            "use 1-63 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return name
