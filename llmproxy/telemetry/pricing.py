"""Estimated cost of tokens by model, from the configured price list (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from llmproxy.settings import ModelPrice
from llmproxy.trace import TokenUsage


class PriceList:
    """Looks a model up by exact name, else by its longest priced prefix (gpt-4o-2024-08-06 → gpt-4o)."""

    def __init__(self, prices: Mapping[str, ModelPrice]) -> None:
        self._prices = dict(prices)
        # Longest first, so gpt-4o-mini-2024 matches gpt-4o-mini before gpt-4o.
        self._prefixes = sorted(self._prices, key=len, reverse=True)
        self._resolved: dict[str, ModelPrice | None] = {}

    def price(self, model: str) -> ModelPrice | None:
        """The price of model, or None when it has none."""
        if model not in self._resolved:
            self._resolved[model] = self._lookup(model)
        return self._resolved[model]

    def cost_usd(self, model: str, usage: TokenUsage) -> float:
        """What usage would have cost on model; 0.0 when the model has no price."""
        price = self.price(model)
        if price is None:
            return 0.0
        per_token = 1 / 1_000_000
        return (usage.prompt_tokens * price.input_usd_per_1m + usage.completion_tokens * price.output_usd_per_1m) * (
            per_token
        )

    def _lookup(self, model: str) -> ModelPrice | None:
        if model in self._prices:
            return self._prices[model]
        # Only a dated or suffixed variant counts: "gpt-4o-2024" is gpt-4o, "gpt-4ox" is not.
        for prefix in self._prefixes:
            if model.startswith(prefix + "-"):
                return self._prices[prefix]
        return None
