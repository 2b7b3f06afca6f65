"""Chat completion replies of the fake: numbered text or a forced tool call, as one body or as chunks."""

import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from llmproxy.fake_upstream.bodies import Body, model_of, optional_int
from llmproxy.fake_upstream.errors import RequestRejected
from llmproxy.fake_upstream.prompts import count_words, last_user_text, message_words, pad, pieces, truncate
from llmproxy.fake_upstream.replies import Envelope, Json, Usage, with_usage

MAX_CHOICES = 128


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the fake answers with."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatChoice:
    """One choice: text content or a tool call."""

    index: int
    content: str | None
    tool_call: ToolCall | None
    finish_reason: str


@dataclass(frozen=True, slots=True)
class ChatReply:
    """Everything needed to render one chat completion, as JSON or as a stream."""

    envelope: Envelope
    choices: tuple[ChatChoice, ...]
    usage: Usage


def plan_chat(body: Body, number: int, content_bytes: int | None = None) -> ChatReply:
    """The reply to a chat request, the `number`-th one the fake answers (text padded to `content_bytes`).

    Raises:
        RequestRejected: the body lacks a model or messages, or has invalid `n`/`max_tokens`.
    """
    model = model_of(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestRejected(400, "messages must be a non-empty array", param="messages")
    user_text = last_user_text(messages)
    tool_name = _forced_tool(body)
    choices = tuple(
        _tool_choice(i, number, tool_name, user_text)
        if tool_name
        else _text_choice(i, number, user_text, body, content_bytes)
        for i in range(_choice_count(body))
    )
    completion_tokens = sum(count_words(c.content or (c.tool_call.arguments if c.tool_call else "")) for c in choices)
    envelope = Envelope(f"chatcmpl-fake-{number}", "chat.completion", int(time.time()), model)
    return ChatReply(envelope, choices, Usage(message_words(messages), completion_tokens))


def chat_json(reply: ChatReply) -> Json:
    """The `chat.completion` body."""
    body = reply.envelope.wrap([_choice_json(choice) for choice in reply.choices])
    return {**body, "usage": reply.usage.to_json()}


def chat_chunks(reply: ChatReply, include_usage: bool) -> Iterator[Json]:
    """The `chat.completion.chunk` objects of the streamed reply, in order."""
    chunks = (
        reply.envelope.wrap([choice], "chat.completion.chunk")
        for reply_choice in reply.choices
        for choice in _choice_deltas(reply_choice)
    )
    if not include_usage:
        return chunks
    return with_usage(chunks, reply.usage, reply.envelope.wrap([], "chat.completion.chunk"))


def _choice_count(body: Body) -> int:
    count = optional_int(body, "n", minimum=1) or 1
    if count > MAX_CHOICES:
        raise RequestRejected(400, f"n must be at most {MAX_CHOICES}", param="n")
    return count


def _forced_tool(body: Body) -> str | None:
    """The tool a `required` or named `tool_choice` forces, if the request has tools."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools:
        return None
    if choice == "required":
        first = tools[0].get("function") if isinstance(tools[0], dict) else None
        return str(first.get("name", "tool")) if isinstance(first, dict) else "tool"
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict):
        return str(choice["function"].get("name", "tool"))
    return None


def _text_choice(index: int, number: int, user_text: str, body: Body, content_bytes: int | None) -> ChatChoice:
    text = pad(f"Fake reply #{number} to: {user_text}" + (f" (choice {index})" if index else ""), content_bytes)
    limit = optional_int(body, "max_completion_tokens")
    limit = optional_int(body, "max_tokens") if limit is None else limit
    content, cut = truncate(text, limit)
    return ChatChoice(index, content, None, "length" if cut else "stop")


def _tool_choice(index: int, number: int, name: str, user_text: str) -> ChatChoice:
    call_id = f"call_fake_{number}" + (f"_{index}" if index else "")
    arguments = orjson.dumps({"input": user_text}).decode()
    return ChatChoice(index, None, ToolCall(call_id, name, arguments), "tool_calls")


def _choice_json(choice: ChatChoice) -> Json:
    message: Json = {"role": "assistant", "content": choice.content, "refusal": None, "annotations": []}
    if choice.tool_call:
        message["tool_calls"] = [_tool_call_json(choice.tool_call)]
    return {"index": choice.index, "message": message, "logprobs": None, "finish_reason": choice.finish_reason}


def _tool_call_json(call: ToolCall, arguments: str | None = None) -> Json:
    function = {"name": call.name, "arguments": call.arguments if arguments is None else arguments}
    return {"id": call.id, "type": "function", "function": function}


def _choice_deltas(choice: ChatChoice) -> Iterator[Json]:
    """Stream choices of one choice: role first, then content or argument fragments, then the finish."""
    fragments: list[Json]
    if choice.tool_call:
        opening: Json = {"role": "assistant", "content": None, "refusal": None}
        opening["tool_calls"] = [{"index": 0, **_tool_call_json(choice.tool_call, arguments="")}]
        fragments = [{"tool_calls": [{"index": 0, "function": {"arguments": part}}]} for part in _thirds(choice)]
    else:
        opening = {"role": "assistant", "content": "", "refusal": None}
        fragments = [{"content": piece} for piece in pieces(choice.content or "")]
    for delta in [opening, *fragments]:
        yield {"index": choice.index, "delta": delta, "logprobs": None, "finish_reason": None}
    yield {"index": choice.index, "delta": {}, "logprobs": None, "finish_reason": choice.finish_reason}


def _thirds(choice: ChatChoice) -> list[str]:
    """The tool call's arguments in three fragments, as OpenAI streams them in several."""
    arguments = choice.tool_call.arguments if choice.tool_call else ""
    step = max(1, -(-len(arguments) // 3))
    return [arguments[start : start + step] for start in range(0, len(arguments), step)]
