"""Reading FT.SEARCH replies whichever shape redis-py returns (RESP2 `Result` objects or RESP3 dicts)."""

from __future__ import annotations

from typing import Any


def result_rows(raw: object) -> list[dict[str, object]]:
    """The fields of each hit, keyed by str."""
    if isinstance(raw, dict):
        rows = [_value(row, "extra_attributes") or {} for row in _value(raw, "results") or []]
    else:
        rows = [doc.__dict__ for doc in getattr(raw, "docs", [])]
    return [{as_text(name): value for name, value in row.items()} for row in rows]


def as_text(value: object) -> str:
    """A field value as str, whether it came back as bytes or str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _value(container: dict[Any, Any], key: str) -> Any:
    """container[key] (or None) whether its keys came back as str or bytes."""
    return container.get(key, container.get(key.encode()))


def result_total(raw: object) -> int:
    """The number of all matches (not only the returned page)."""
    if isinstance(raw, dict):
        return int(_value(raw, "total_results") or 0)
    return int(getattr(raw, "total", 0))
