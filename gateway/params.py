"""Query parameters of the list routes, checked before they reach a protobuf field.

A ``limit`` of ``99999999999`` does not fit the ``int32`` page size behind it, ``²`` passes
``str.isdigit`` but not ``int()``, and ``1_000`` passes ``int()``: only plain ASCII digits within
the range are accepted. Page tokens are opaque strings the services issued; anything else
(too long, not printable ASCII) is refused here rather than sent on.
"""

from __future__ import annotations

import re

from starlette.datastructures import QueryParams

from gateway.errors import invalid

MAX_LIMIT = 1000
"""Largest ``limit`` the edge passes on; each service also caps its own pages (approvals 500, workflows 200)."""
MAX_TOKEN_CHARS = 1024
_DIGITS = re.compile(r"[0-9]{1,10}")
_TOKEN = re.compile(r"[\x21-\x7e]*")


def limit(query: QueryParams, name: str = "limit", maximum: int = MAX_LIMIT) -> int:
    """``?limit=``: an integer from 0 (the service's default page) to ``maximum``."""
    raw = query.get(name, "")
    if raw == "":
        return 0
    if not _DIGITS.fullmatch(raw) or int(raw) > maximum:
        raise invalid(f"'{name}' must be an integer from 0 to {maximum}.", param=name, code="invalid_value")
    return int(raw)


def page_token(query: QueryParams, name: str = "page_token") -> str:
    """``?page_token=``: the ``next_page_token`` of an earlier page, passed on untouched."""
    raw = query.get(name, "")
    if len(raw) > MAX_TOKEN_CHARS or not _TOKEN.fullmatch(raw):
        raise invalid(
            f"'{name}' is not a page token this API issued: use the 'next_page_token' of the previous page.",
            param=name,
            code="invalid_page_token",
        )
    return raw
