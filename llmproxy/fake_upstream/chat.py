"""Chat completion replies of the fake: numbered text, JSON in the requested format, or tool calls.

Tools are called by the rule in `tool_calls`; `response_format` `json_object`/`json_schema` answers are JSON (see
`formats`). After tool results (trailing `tool` messages) the text answers them: "Fake reply #N with tool output: ...".
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass

from llmproxy.fake_upstream.bodies import Body, model_of, optional_int
from llmproxy.fake_upstream.errors import RequestRejected
from llmproxy.fake_upstream.formats import AnswerFormat, formatted, read_format
from llmproxy.fake_upstream.meaning import meaning_answer
from llmproxy.fake_upstream.prompts import (
    content_text,
    count_words,
    fragments,
    last_user_text,
    message_words,
    pad,
    pieces,
    truncate,
)
from llmproxy.fake_upstream.replies import ChoicesReply, Envelope, Json, Usage, with_usage
from llmproxy.fake_upstream.tool_calls import ToolChoice, ToolSpec, openai_tool_choice, tool_arguments, tools_to_call

MAX_CHOICES = 128


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the fake answers with."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatChoice:
    """One choice: text content or tool calls."""

    index: int
    content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str


ChatReply = ChoicesReply[ChatChoice]


def plan_chat(body: Body, number: int, content_bytes: int | None = None, *, meaning: bool = False) -> ChatReply:
    """The reply to a chat request, the `number`-th one the fake answers (text padded to `content_bytes`); with
    `meaning`, the text depends only on the last user message's content words (see `meaning`).

    Raises:
        RequestRejected: the body lacks a model or messages, or has invalid `n`/`max_tokens`.
    """
    model = model_of(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestRejected(400, "messages must be a non-empty array", param="messages")
    user_text = last_user_text(messages)
    tools = _tools_to_call(body, messages, user_text)
    answer_format = read_format(body.get("response_format"), "response_format")
    reply = _meaning_text(body, number, user_text) if meaning else _reply_text(number, messages, user_text)
    choices = tuple(
        _tool_choice(i, number, tools, user_text)
        if tools
        else _text_choice(i, reply, body, answer_format, content_bytes)
        for i in range(_choice_count(body))
    )
    completion_tokens = sum(_choice_words(choice) for choice in choices)
    envelope = Envelope(f"chatcmpl-fake-{number}", "chat.completion", int(time.time()), model)
    return ChoicesReply(envelope, choices, Usage(message_words(messages), completion_tokens))


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


def _tools_to_call(body: Body, messages: list[object], user_text: str) -> tuple[ToolSpec, ...]:
    """The function tools the fake calls (see `tool_calls`): `tools[].function.parameters` are their schemas."""
    specs = [spec for tool in _list(body.get("tools")) if (spec := _tool_spec(tool)) is not None]
    last = messages[-1] if messages else None
    user_turn = isinstance(last, dict) and last.get("role") == "user"
    return tools_to_call(specs, _tool_choice_of(body), user_text, user_turn)


def _tool_spec(tool: object) -> ToolSpec | None:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        return None
    parameters = function.get("parameters")
    return ToolSpec(function["name"], parameters if isinstance(parameters, dict) else {"type": "object"})


def _tool_choice_of(body: Body) -> ToolChoice:
    choice = body.get("tool_choice")
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    named = str(function.get("name", "tool")) if isinstance(function, dict) else None
    return openai_tool_choice(body, named)


def _reply_text(number: int, messages: list[object], user_text: str) -> str:
    """The numbered reply to the last user message, or to the tool results that end the conversation."""
    outputs: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        outputs.insert(0, content_text(message.get("content")))
    if outputs:
        return f"Fake reply #{number} with tool output: " + "; ".join(outputs)
    return f"Fake reply #{number} to: {user_text}"


def _meaning_text(body: Body, number: int, user_text: str) -> str:
    """The answer by meaning: its first phrasing for a deterministic request, else one per reply number."""
    deterministic = body.get("temperature") == 0 and body.get("seed") is not None
    return meaning_answer(user_text, 0 if deterministic else number)


def _text_choice(
    index: int, reply: str, body: Body, answer_format: AnswerFormat, content_bytes: int | None
) -> ChatChoice:
    text = pad(formatted(reply + (f" (choice {index})" if index else ""), answer_format), content_bytes)
    limit = optional_int(body, "max_completion_tokens")
    limit = optional_int(body, "max_tokens") if limit is None else limit
    content, cut = truncate(text, limit)
    return ChatChoice(index, content, (), "length" if cut else "stop")


def _tool_choice(index: int, number: int, tools: tuple[ToolSpec, ...], user_text: str) -> ChatChoice:
    call_id = f"call_fake_{number}" + (f"_{index}" if index else "")
    calls = tuple(
        ToolCall(call_id + (f"-{k}" if k else ""), tool.name, tool_arguments(tool, user_text))
        for k, tool in enumerate(tools)
    )
    return ChatChoice(index, None, calls, "tool_calls")


def _choice_words(choice: ChatChoice) -> int:
    return count_words(choice.content or "") + sum(count_words(call.arguments) for call in choice.tool_calls)


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _choice_json(choice: ChatChoice) -> Json:
    message: Json = {"role": "assistant", "content": choice.content, "refusal": None, "annotations": []}
    if choice.tool_calls:
        message["tool_calls"] = [_tool_call_json(call) for call in choice.tool_calls]
    return {"index": choice.index, "message": message, "logprobs": None, "finish_reason": choice.finish_reason}


def _tool_call_json(call: ToolCall, arguments: str | None = None) -> Json:
    function = {"name": call.name, "arguments": call.arguments if arguments is None else arguments}
    return {"id": call.id, "type": "function", "function": function}


def _choice_deltas(choice: ChatChoice) -> Iterator[Json]:
    """Stream choices of one choice: role first, then content or argument fragments, then the finish."""
    deltas: list[Json]
    if choice.tool_calls:
        deltas = list(_tool_call_deltas(choice.tool_calls))
        deltas[0] = {"role": "assistant", "content": None, "refusal": None, **deltas[0]}
    else:
        opening: Json = {"role": "assistant", "content": "", "refusal": None}
        deltas = [opening]
        deltas.extend({"content": piece} for piece in pieces(choice.content or ""))
    for delta in deltas:
        yield {"index": choice.index, "delta": delta, "logprobs": None, "finish_reason": None}
    yield {"index": choice.index, "delta": {}, "logprobs": None, "finish_reason": choice.finish_reason}


def _tool_call_deltas(calls: tuple[ToolCall, ...]) -> Iterator[Json]:
    """Each call's head (id, name, empty arguments), then its arguments in three fragments, as OpenAI streams them."""
    for k, call in enumerate(calls):
        yield {"tool_calls": [{"index": k, **_tool_call_json(call, arguments="")}]}
        for part in fragments(call.arguments, 3):
            yield {"tool_calls": [{"index": k, "function": {"arguments": part}}]}
