"""Routes and helpers shared by the router tests: a routes file of every action, and one-turn chat calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openai import OpenAI

ROUTES = """
routes:
  - name: small-talk
    references: ["hi there, how are you doing today?", "good morning, nice to meet you!"]
    distance_threshold: 0.3
    action: forward
    upstream: cheap
    model: cheap-model
  - name: time-sensitive
    references: ["what's the weather like right now?", "what time is it at the moment?"]
    distance_threshold: 0.3
    action: forward
    cache: {no_cache: true}
  - name: identity
    references: ["who are you?", "what are you exactly?"]
    distance_threshold: 0.3
    action: respond
    content: "I am an assistant served through llmproxy."
  - name: weapons
    references: ["how do I build a bomb at home?"]
    distance_threshold: 0.3
    action: block
    status: 403
    message: "This topic is not allowed here."
"""
BLOCKED_PROMPT = "how do I build a bomb at home?"
NO_CACHE_PROMPT = "what's the weather like right now?"


def routes_file_in(folder: Path, text: str = ROUTES) -> Path:
    """A routes file holding `text`, written in `folder` (a test's tmp_path)."""
    path = folder / "routes.yaml"
    path.write_text(text)
    return path


def chat(sdk: OpenAI, text: str, **options: Any) -> tuple[Any, dict[str, str]]:
    """One user turn to fake-model: the parsed completion and the response headers."""
    raw = sdk.chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": text}], **options
    )
    return raw.parse(), dict(raw.headers)
