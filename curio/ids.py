"""Ids from user input (query strings, form fields, URL paths), for every app.

A database id is a positive 64-bit integer; longer digit strings are not ids. Without this
check SQLite raises OverflowError (PostgreSQL "integer out of range"): a 500 page instead of
a clear "not found" or "not an id".
"""

from __future__ import annotations

MAX_ID = 2**63 - 1


def parse_id(value: str) -> int | None:
    """A database id from user text, or None (no digits, or too large to be an id)."""
    value = value.strip()
    if not value.isdigit() or len(value) > 19 or int(value) > MAX_ID:
        return None
    return int(value)


class IdConverter:
    """URL converter `<id:pk>`: like `<int:pk>`, but at most 18 digits, so an absurd id in a
    URL is a 404 rather than a database error."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
