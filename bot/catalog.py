"""Which models a user may pick: those Kimi lists (GET /models) that the price table knows.

A model without a price is never offered, because its budget could not be enforced.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.kimi import KimiClient, KimiError
from bot.pricing import ModelPrice, PriceTable

log = logging.getLogger(__name__)


class ModelCatalog:
    def __init__(self, kimi: KimiClient, prices: PriceTable, default_model: str) -> None:
        self._kimi = kimi
        self._prices = prices
        self._default_model = default_model

    async def available(self) -> list[ModelPrice]:
        """Priced models that the account can use, the default first."""
        try:
            listed = {model.id: model for model in await self._kimi.list_models()}
        except (KimiError, OSError, TimeoutError) as error:
            # Without the list we offer the priced models; Kimi refuses one it lacks, clearly.
            detail = error.log_text() if isinstance(error, KimiError) else type(error).__name__
            log.warning("model list unavailable: %s", detail)
            listed = None
        models = []
        for name, price in self._prices.models.items():
            if listed is not None and name not in listed:
                continue
            context = listed[name].context_length if listed is not None else None
            if context and context != price.context_length:
                price = _with_context(price, context)
            models.append(price)
        models.sort(key=lambda price: (price.model != self._default_model, price.model))
        return models

    async def find(self, model: str) -> ModelPrice | None:
        for price in await self.available():
            if price.model == model:
                return price
        return None


def _with_context(price: ModelPrice, context_length: int) -> ModelPrice:
    # The live list is the better authority on context length than our table.
    return replace(price, context_length=context_length)
