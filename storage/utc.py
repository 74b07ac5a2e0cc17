"""Timezone-aware UTC timestamps on every dialect.

PostgreSQL keeps the offset (timestamptz); SQLite keeps a naive string and hands back a naive
datetime. This column type makes both behave the same: it stores UTC and always returns an aware
UTC datetime, so comparisons such as "usage since midnight" work whatever the caller's timezone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            # A naive datetime is ambiguous (local? UTC?); refusing it finds the bug at once
            # instead of shifting a /cost period by the server's offset.
            raise ValueError("naive datetime given to storage; pass a timezone-aware one")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite compares timestamps as text, so all of them must be written the same way.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
