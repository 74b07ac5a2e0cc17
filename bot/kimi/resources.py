"""The account's other resources as Moonshot describes them: models, balance and files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

Currency = Literal["CNY", "USD"]

# The two platforms are separate accounts billed in different currencies; a gateway's balance is
# in its own unit, which this client cannot know.
_CURRENCY_BY_DOMAIN: Mapping[str, Currency] = {
    "moonshot.cn": "CNY",
    "kimi.com": "CNY",
    "moonshot.ai": "USD",
    "kimi.ai": "USD",
}


def currency_for(base_url: str) -> Currency | None:
    host = (urlsplit(base_url).hostname or "").lower()
    for domain, currency in _CURRENCY_BY_DOMAIN.items():
        if host == domain or host.endswith("." + domain):
            return currency
    return None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model as GET /models lists it. Older listings lack the supports_* flags: None then."""

    id: str
    context_length: int | None
    supports_reasoning: bool | None
    supports_image_in: bool | None = None
    supports_video_in: bool | None = None
    owned_by: str | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> ModelInfo:
        def flag(name: str) -> bool | None:
            value = raw.get(name)
            return value if isinstance(value, bool) else None

        context = raw.get("context_length")
        return cls(
            id=str(raw["id"]),
            context_length=context if isinstance(context, int) else None,
            supports_reasoning=flag("supports_reasoning"),
            supports_image_in=flag("supports_image_in"),
            supports_video_in=flag("supports_video_in"),
            owned_by=raw.get("owned_by"),
        )


@dataclass(frozen=True, slots=True)
class Balance:
    """The account's balance, exact (Decimal, parsed from the JSON text, never via float).

    available = cash + voucher; cash may be negative when the account owes money. Inference is
    refused once available <= 0.
    """

    available: Decimal
    voucher: Decimal
    cash: Decimal
    currency: Currency | None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], currency: Currency | None) -> Balance:
        def amount(name: str) -> Decimal:
            return Decimal(str(data.get(name) or 0))

        return cls(
            available=amount("available_balance"),
            voucher=amount("voucher_balance"),
            cash=amount("cash_balance"),
            currency=currency,
        )


@dataclass(frozen=True, slots=True)
class FileObject:
    """A stored file. status is "ok"/"ready", or "error" when extraction failed."""

    id: str
    bytes: int
    filename: str
    status: str
    status_details: str
    purpose: str = "file-extract"
    created_at: int | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> FileObject:
        return cls(
            id=str(raw["id"]),
            bytes=int(raw.get("bytes") or 0),
            filename=str(raw.get("filename") or ""),
            status=str(raw.get("status") or ""),
            status_details=str(raw.get("status_details") or ""),
            purpose=str(raw.get("purpose") or "file-extract"),
            created_at=raw.get("created_at"),
        )
