"""Reads prompt text out of OpenAI request bodies and counts and cuts words ("tokens" here)."""

import re
from collections.abc import Sequence

_PIECE = re.compile(r"\S+\s*")


def count_words(text: str) -> int:
    """Whitespace-separated words: the fake's token count."""
    return len(text.split())


def pieces(text: str) -> list[str]:
    """The text cut into words, each with the whitespace that follows it; they join back to the text."""
    return _PIECE.findall(text)


def fragments(text: str, count: int) -> list[str]:
    """The text cut into `count` (or fewer) pieces of about equal length; they join back to the text."""
    step = max(1, -(-len(text) // count))
    return [text[start : start + step] for start in range(0, len(text), step)]


def truncate(text: str, max_words: int | None) -> tuple[str, bool]:
    """The first `max_words` words of the text, and whether anything was cut."""
    parts = pieces(text)
    if max_words is None or max_words >= len(parts):
        return text, False
    return "".join(parts[:max_words]).rstrip(), True


def pad(text: str, size: int | None) -> str:
    """The text followed by one long word, so that it is `size` bytes of UTF-8 (unchanged when already longer)."""
    missing = 0 if size is None else size - len(text.encode()) - 1
    return text if missing <= 0 else f"{text} {'x' * missing}"


def content_text(content: object) -> str:
    """Text of a message content: a string, or the joined `text` parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
        return " ".join(texts)
    return ""


def last_user_text(messages: Sequence[object]) -> str:
    """Text of the last message with role user ("" when there is none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def message_words(messages: Sequence[object]) -> int:
    """Words over all message contents: the prompt token count of a chat request."""
    return sum(count_words(content_text(m.get("content"))) for m in messages if isinstance(m, dict))


def input_texts(value: object) -> list[str] | None:
    """Inputs of a completion prompt or embedding input: a string, strings, or token arrays (stringified).

    None when the value has none of these shapes.
    """
    if isinstance(value, str):
        return [value]
    if _is_tokens(value):
        return [_tokens_text(value)]
    if isinstance(value, list) and value and all(isinstance(item, str) or _is_tokens(item) for item in value):
        return [item if isinstance(item, str) else _tokens_text(item) for item in value]
    return None


def _is_tokens(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(type(item) is int for item in value)


def _tokens_text(tokens: object) -> str:
    assert isinstance(tokens, list)
    return " ".join(str(token) for token in tokens)
