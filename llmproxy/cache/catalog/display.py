"""The prompt of a request as an operator reads it in the admin API: one short text for every endpoint (pure).

This is for display and text search only. What the L2 cache embeds is `canonical.semantic_key`, which is
stricter (it refuses anything that is not plain text).
"""

from __future__ import annotations

from typing import Any

import orjson

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.wire import EndpointKind

DISPLAY_CHARS = 2_000  # longer prompts are cut: enough to recognise and search, small in Redis


def display_prompt(kind: EndpointKind, body: JsonObject, limit: int = DISPLAY_CHARS) -> str:
    """The latest user turn (chat), the prompt (completions) or the input (embeddings), at most `limit` chars."""
    if kind == "chat":
        text = _latest_user_turn(body.get("messages"))
    else:
        text = _texts(body.get("prompt" if kind == "completion" else "input"), limit)
    return _cut(text, limit)


def _latest_user_turn(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        return ""
    turns = [message for message in messages if isinstance(message, dict)]
    users = [message for message in turns if message.get("role") == "user"]
    # A conversation without a user turn (system prompt only) still shows something.
    chosen = users[-1] if users else (turns[-1] if turns else {})
    return _content_text(chosen.get("content"))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [part for part in content if isinstance(part, dict)]
    # Images, audio and files are named by type, so an entry with only an image is not shown as empty.
    return "\n".join(str(part["text"]) if part.get("type") == "text" else f"[{part.get('type')}]" for part in parts)


def _texts(value: Any, limit: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        joined: list[str] = []
        size = 0
        for item in value:  # stop early: an embedding batch may hold thousands of inputs
            joined.append(item)
            size += len(item) + 1
            if size > limit:
                break
        return "\n".join(joined)
    if value is None:
        return ""
    return orjson.dumps(value).decode()[: limit + 1]  # token arrays: shown as JSON


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
