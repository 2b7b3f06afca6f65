"""OpenAI Responses API replies of the fake (`POST /v1/responses`): a Response object, planned once.

The output is one `message` item with one `output_text` part ("Fake reply #N to: <latest user text>", or
"Fake reply #N with tool output: ..." after `function_call_output` items; JSON under a `text.format` of
`json_object`/`json_schema`), or `function_call` items chosen by the rule in `tool_calls`. Words stand in for
tokens. `max_output_tokens` below the reply's length cuts it: `status: "incomplete"` with
`incomplete_details.reason: "max_output_tokens"`. `X-Fake-Response-Status: failed` answers `status: "failed"`
with an `error` and no output; `X-Fake-Response-Status: incomplete` cuts the text in half with reason
`content_filter`. `previous_response_id` (any id) and `conversation` are accepted and echoed.
"""

import time
from dataclasses import dataclass

from llmproxy.fake_upstream.bodies import Body, model_of, optional_int
from llmproxy.fake_upstream.errors import RequestRejected
from llmproxy.fake_upstream.formats import formatted, read_format
from llmproxy.fake_upstream.prompts import count_words, truncate
from llmproxy.fake_upstream.replies import Json
from llmproxy.fake_upstream.responses_input import ResponsesInput, read_input
from llmproxy.fake_upstream.tool_calls import ToolChoice, ToolSpec, openai_tool_choice, tool_arguments, tools_to_call

OUTCOMES = ("failed", "incomplete")
FAILURE: Json = {"code": "server_error", "message": "fake response failure"}


@dataclass(frozen=True, slots=True)
class MessageItem:
    """An assistant `message` output item holding one `output_text` part."""

    id: str
    text: str
    status: str  # completed | incomplete


@dataclass(frozen=True, slots=True)
class FunctionCallItem:
    """A `function_call` output item."""

    id: str
    call_id: str
    name: str
    arguments: str


OutputItem = MessageItem | FunctionCallItem


@dataclass(frozen=True, slots=True)
class ResponsesReply:
    """Everything needed to render one response, as JSON or as its event stream."""

    id: str
    created_at: int
    model: str
    status: str  # completed | incomplete | failed
    items: tuple[OutputItem, ...]
    input_tokens: int
    incomplete_reason: str | None
    echo: Json  # the request fields a Response repeats


def plan_response(body: Body, number: int, outcome: str | None) -> ResponsesReply:
    """The reply to a Responses request, the `number`-th one the fake answers.

    Raises:
        RequestRejected: the body lacks a model or input, or has a mistyped field or a bad outcome header.
    """
    if outcome is not None and outcome not in OUTCOMES:
        raise RequestRejected(400, "X-Fake-Response-Status must be 'failed' or 'incomplete'")
    model = model_of(body)
    if body.get("conversation") and body.get("previous_response_id"):
        raise RequestRejected(400, "Cannot use both 'conversation' and 'previous_response_id'.", param="conversation")
    given = read_input(body)
    tools = tools_to_call(_tool_specs(body), _tool_choice(body), given.user_text, given.user_turn)
    if tools:
        items: tuple[OutputItem, ...] = tuple(_function_call(number, k, tool, given) for k, tool in enumerate(tools))
        status, reason = "completed", None
    else:
        item, reason = _message(number, body, given, outcome)
        items, status = (item,), "incomplete" if reason else "completed"
    if outcome == "failed":
        status, reason = "failed", None
    return ResponsesReply(
        f"resp_fake_{number}", int(time.time()), model, status, items, given.words, reason, _echo(body)
    )


def response_json(reply: ResponsesReply, in_progress: bool = False) -> Json:
    """The Response object: final, or as `response.created`/`response.in_progress` carry it (no output yet)."""
    final = not in_progress
    failed = reply.status == "failed"
    output = [item_json(item) for item in reply.items] if final and not failed else []
    incomplete = {"reason": reply.incomplete_reason} if final and reply.incomplete_reason else None
    return {
        "id": reply.id,
        "object": "response",
        "created_at": reply.created_at,
        "status": reply.status if final else "in_progress",
        "completed_at": reply.created_at if final and reply.status == "completed" else None,
        "error": FAILURE if final and failed else None,
        "incomplete_details": incomplete,
        "model": reply.model,
        "output": output,
        **reply.echo,
        "usage": _usage_json(reply) if final and not failed else None,
    }


def item_json(item: OutputItem, done: bool = True) -> Json:
    """An output item, finished or as `response.output_item.added` opens it (no text or arguments yet)."""
    if isinstance(item, FunctionCallItem):
        status = "completed" if done else "in_progress"
        arguments = item.arguments if done else ""
        return {
            "id": item.id,
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": item.call_id,
            "name": item.name,
        }
    content = [text_part_json(item.text)] if done else []
    status = item.status if done else "in_progress"
    return {"id": item.id, "type": "message", "status": status, "content": content, "role": "assistant"}


def text_part_json(text: str) -> Json:
    """An `output_text` content part."""
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message(number: int, body: Body, given: ResponsesInput, outcome: str | None) -> tuple[MessageItem, str | None]:
    """The message item and, when the text was cut, why."""
    if given.tool_outputs:
        reply = f"Fake reply #{number} with tool output: " + "; ".join(given.tool_outputs)
    else:
        reply = f"Fake reply #{number} to: {given.user_text}"
    text_config = body.get("text")
    if text_config is not None and not isinstance(text_config, dict):
        raise RequestRejected(400, "Invalid type for 'text': expected an object.", param="text")
    text = formatted(reply, read_format((text_config or {}).get("format"), "text.format"))
    limit = optional_int(body, "max_output_tokens", minimum=1)
    reason = "max_output_tokens"
    if outcome == "incomplete":
        limit, reason = max(1, count_words(text) // 2), "content_filter"
    text, cut = truncate(text, limit)
    return MessageItem(f"msg_fake_{number}", text, "incomplete" if cut else "completed"), reason if cut else None


def _function_call(number: int, k: int, tool: ToolSpec, given: ResponsesInput) -> FunctionCallItem:
    suffix = f"-{k}" if k else ""
    arguments = tool_arguments(tool, given.user_text)
    return FunctionCallItem(f"fc_fake_{number}{suffix}", f"call_fake_{number}{suffix}", tool.name, arguments)


def _tool_specs(body: Body) -> list[ToolSpec]:
    """The function tools (`tools[].parameters` are their schemas); built-in tools are never called."""
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise RequestRejected(400, "Invalid type for 'tools': expected an array.", param="tools")
    specs = []
    for tool in tools or []:
        if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("name"), str):
            parameters = tool.get("parameters")
            specs.append(ToolSpec(tool["name"], parameters if isinstance(parameters, dict) else {"type": "object"}))
    return [spec for spec in specs if spec.name]


def _tool_choice(body: Body) -> ToolChoice:
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return openai_tool_choice(body, None)
    named = choice.get("name") if choice.get("type") == "function" else None
    required = choice.get("type") == "allowed_tools" and choice.get("mode") == "required"
    return openai_tool_choice(body, named, required=required)


def _usage_json(reply: ResponsesReply) -> Json:
    output = sum(count_words(item.text if isinstance(item, MessageItem) else item.arguments) for item in reply.items)
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.input_tokens + output,
    }


def _echo(body: Body) -> Json:
    """The request fields a Response repeats, with the API's defaults for those not sent."""
    conversation = body.get("conversation")
    text = body.get("text")
    return {
        "background": body.get("background") is True,
        "conversation": {"id": conversation} if isinstance(conversation, str) else conversation,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": body.get("service_tier") or "default",
        "store": body.get("store") is not False,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium", **(text if isinstance(text, dict) else {})},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "user": body.get("user"),
    }
