"""Reads an Anthropic Messages request: its checked fields, the latest user text, tool results, the token count.

`system` is a string or text blocks; each message's content is a string or blocks (`text`, `image`,
`document`, `tool_use`, `tool_result`, `thinking`, ...). A user message holding `tool_result` blocks is the
second turn of a tool call, not a new question. Words stand in for tokens: `input_tokens` (and
`/v1/messages/count_tokens`) count the words of the system prompt, of every message's text, tool inputs and
results, and of each tool's name and description.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from llmproxy.fake_upstream.bodies import Body
from llmproxy.fake_upstream.errors import RequestRejected
from llmproxy.fake_upstream.prompts import count_words

ROLES = frozenset({"user", "assistant"})


@dataclass(frozen=True, slots=True)
class MessagesInput:
    """What the fake's answer depends on."""

    user_text: str  # text of the latest user message that is not only tool results
    tool_results: tuple[str, ...]  # results in the last message, when it carries any
    user_turn: bool  # whether the last message is a user question (not tool results)
    words: int  # input tokens


def read_messages(body: Body) -> MessagesInput:
    """The request's conversation as the fake reads it.

    Raises:
        RequestRejected: `messages` is missing, empty or malformed, or `system` is mistyped.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestRejected(400, "messages: at least one message is required", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestRejected(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if not isinstance(message.get("content"), str | list):
            raise RequestRejected(400, f"messages.{index}.content: Input should be a valid string or list")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise RequestRejected(400, "system: Input should be a valid string or list of text blocks")
    last = messages[-1]
    results = tuple(_block_text(block) for block in _blocks(last) if block.get("type") == "tool_result")
    user_turn = last.get("role") == "user" and not results
    return MessagesInput(_user_text(messages), results if last.get("role") == "user" else (), user_turn, _words(body))


def input_tokens(body: Body) -> int:
    """The request's input tokens, as `count_tokens` reports them (no `max_tokens` needed)."""
    return read_messages(body).words


def _user_text(messages: Sequence[dict[str, object]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user" and not any(b.get("type") == "tool_result" for b in _blocks(message)):
            return _text(message.get("content"))
    return ""


def _words(body: Body) -> int:
    messages = body.get("messages")
    blocks = [block for message in messages for block in _blocks(message)] if isinstance(messages, list) else []
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    tool_words = sum(count_words(f"{tool.get('name', '')} {tool.get('description', '')}") for tool in _dicts(tools))
    return count_words(_text(body.get("system"))) + sum(map(_block_words, blocks)) + tool_words


def _block_words(block: dict[str, object]) -> int:
    if block.get("type") == "tool_use":
        return count_words(orjson.dumps(block.get("input", {})).decode())
    if block.get("type") == "thinking":
        return count_words(str(block.get("thinking", "")))
    return count_words(_block_text(block))


def _blocks(message: object) -> list[dict[str, object]]:
    """A message's content as blocks: a string is one text block."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return _dicts(content)


def _block_text(block: dict[str, object]) -> str:
    """The text of a text block, or of a tool result's content (a string or text blocks)."""
    if block.get("type") == "tool_result":
        return _text(block.get("content"))
    text = block.get("text")
    return text if block.get("type") == "text" and isinstance(text, str) else ""


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    return " ".join(filter(None, (_block_text(block) for block in _dicts(content))))


def _dicts(value: object) -> list[dict[str, object]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
