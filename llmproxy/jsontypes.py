"""JSON value types shared by every layer: bodies and answers as parsed by orjson (pure)."""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]  # a JSON object as parsed: the raw bodies we forward and the answers we store
