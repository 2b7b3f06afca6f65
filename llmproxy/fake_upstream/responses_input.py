"""Reads a Responses API request's `input`: the latest user text, trailing tool outputs, and its word count.

`input` is a string (one user message) or a list of items: messages (`role` user/system/developer/assistant,
content a string or parts: `input_text`, `output_text`, `input_image`, `input_file`, ...), `function_call`,
`function_call_output` (the second turn of a tool call), `reasoning` and other items (read past).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from llmproxy.fake_upstream.bodies import Body
from llmproxy.fake_upstream.errors import RequestRejected
from llmproxy.fake_upstream.prompts import count_words

TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal"})
TOOL_TURN_ITEMS = frozenset({"function_call_output", "function_call", "reasoning"})


@dataclass(frozen=True, slots=True)
class ResponsesInput:
    """What the fake's answer depends on."""

    user_text: str  # the text of the latest user message ("" when there is none)
    tool_outputs: tuple[str, ...]  # outputs of the function calls that end the input, oldest first
    user_turn: bool  # whether the input ends with a user message
    words: int  # the input's "tokens": words of the instructions and of every text


def read_input(body: Body) -> ResponsesInput:
    """The request's input as the fake reads it.

    Raises:
        RequestRejected: `input` is missing (without a previous response, conversation or prompt) or mistyped.
    """
    raw = body.get("input")
    if raw is None and not any(body.get(name) for name in ("previous_response_id", "conversation", "prompt")):
        raise RequestRejected(
            400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw if raw is not None else []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise RequestRejected(400, "Invalid type for 'input': expected a string or an array of items.", param="input")
    instructions = body.get("instructions")
    words = count_words(instructions if isinstance(instructions, str) else "") + sum(map(_item_words, items))
    last = items[-1] if items else None
    return ResponsesInput(_last_user_text(items), _tool_outputs(items), _is_user_message(last), words)


def _last_user_text(items: Sequence[dict[str, object]]) -> str:
    return next((_content_text(item.get("content")) for item in reversed(items) if _is_user_message(item)), "")


def _tool_outputs(items: Sequence[dict[str, object]]) -> tuple[str, ...]:
    """Outputs of the trailing run of tool-call items, when the input ends with one."""
    outputs: list[str] = []
    for item in reversed(items):
        if item.get("type") not in TOOL_TURN_ITEMS:
            break
        if item.get("type") == "function_call_output":
            outputs.insert(0, _content_text(item.get("output")))
    return tuple(outputs) if items and items[-1].get("type") == "function_call_output" else ()


def _is_user_message(item: object) -> bool:
    return isinstance(item, dict) and item.get("type", "message") == "message" and item.get("role") == "user"


def _item_words(item: dict[str, object]) -> int:
    if item.get("type") == "function_call":
        return count_words(str(item.get("arguments", "")))
    if item.get("type") == "function_call_output":
        return count_words(_content_text(item.get("output")))
    return count_words(_content_text(item.get("content")))


def _content_text(content: object) -> str:
    """A string, or the joined text of the text parts of a list (images and files carry none)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [
        part["text"]
        for part in content
        if isinstance(part, dict) and part.get("type") in TEXT_PARTS and isinstance(part.get("text"), str)
    ]
    return " ".join(texts)
