"""Anthropic Messages replies of the fake (`POST /v1/messages`): a Message, planned once.

Content blocks, in order: a `thinking` block (with a signature) when `thinking` is enabled or adaptive; then
either a `text` block ("Fake reply #N to: <latest user text>", or "Fake reply #N with tool output: ..." after
`tool_result` blocks; JSON under `output_config.format` `json_schema`) or `tool_use` blocks chosen by the rule
in `tool_calls` (under `auto` preceded by a short text block, as Claude writes one). `stop_reason`: `tool_use`,
else `stop_sequence` when the text contains one of `stop_sequences` (cut before it), else `max_tokens` when
the text has more words than `max_tokens` (cut), else `end_turn`. `X-Fake-Stop-Reason: pause_turn` (or
`refusal`) sets that stop reason instead.
"""

import base64
import hashlib
from dataclasses import dataclass

import orjson

from llmproxy.fake_upstream.bodies import Body, model_of, optional_int
from llmproxy.fake_upstream.errors import RequestRejected
from llmproxy.fake_upstream.formats import TEXT, formatted, read_format
from llmproxy.fake_upstream.messages_input import MessagesInput, read_messages
from llmproxy.fake_upstream.prompts import count_words, truncate
from llmproxy.fake_upstream.replies import Json
from llmproxy.fake_upstream.tool_calls import ToolChoice, ToolSpec, tool_arguments, tools_to_call

STOP_OVERRIDES = ("pause_turn", "refusal")
MIN_THINKING_BUDGET = 1024


@dataclass(frozen=True, slots=True)
class TextBlock:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingBlock:
    thinking: str
    signature: str


@dataclass(frozen=True, slots=True)
class ToolUseBlock:
    id: str
    name: str
    input_json: str  # compact JSON of the tool input


ContentBlock = TextBlock | ThinkingBlock | ToolUseBlock


@dataclass(frozen=True, slots=True)
class MessagesReply:
    """Everything needed to render one message, as JSON or as its event stream."""

    id: str
    model: str
    blocks: tuple[ContentBlock, ...]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int

    @property
    def output_tokens(self) -> int:
        """Words over every block."""
        return sum(count_words(_block_words(block)) for block in self.blocks)


def plan_message(body: Body, number: int, stop_override: str | None) -> MessagesReply:
    """The reply to a Messages request, the `number`-th one the fake answers.

    Raises:
        RequestRejected: a required field is missing, a field is mistyped, or the stop override is unknown.
    """
    if stop_override is not None and stop_override not in STOP_OVERRIDES:
        raise RequestRejected(400, "X-Fake-Stop-Reason must be 'pause_turn' or 'refusal'")
    model = model_of(body)
    max_tokens = optional_int(body, "max_tokens", minimum=1)
    if max_tokens is None:
        raise RequestRejected(400, "max_tokens: Field required", param="max_tokens")
    given = read_messages(body)
    blocks: list[ContentBlock] = [_thinking(number, given)] if _thinks(body, max_tokens) else []
    choice = _tool_choice(body)
    tools = tools_to_call(_tool_specs(body), choice, given.user_text, given.user_turn)
    if tools:
        if choice.mode == "auto":
            blocks.append(TextBlock(f"Fake reply #{number}: calling {', '.join(tool.name for tool in tools)}."))
        blocks.extend(_tool_use(number, k, tool, given) for k, tool in enumerate(tools))
        stop_reason, stop_sequence = "tool_use", None
    else:
        text, stop_reason, stop_sequence = _text(number, body, given, max_tokens)
        blocks.append(TextBlock(text))
    if stop_override is not None:
        stop_reason, stop_sequence = stop_override, None
    return MessagesReply(f"msg_fake_{number}", model, tuple(blocks), stop_reason, stop_sequence, given.words)


def message_json(reply: MessagesReply, opening: bool = False) -> Json:
    """The Message: final, or as `message_start` carries it (no content, no stop reason yet)."""
    usage: Json = {
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1 if opening else reply.output_tokens,
        "service_tier": "standard",
    }
    return {
        "id": reply.id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [] if opening else [block_json(block) for block in reply.blocks],
        "stop_reason": None if opening else reply.stop_reason,
        "stop_sequence": None if opening else reply.stop_sequence,
        "usage": usage,
    }


def block_json(block: ContentBlock, opening: bool = False) -> Json:
    """A content block, finished or as `content_block_start` opens it (empty text, `{}` input)."""
    if isinstance(block, TextBlock):
        return {"type": "text", "text": "" if opening else block.text}
    if isinstance(block, ThinkingBlock):
        return {
            "type": "thinking",
            "thinking": "" if opening else block.thinking,
            "signature": "" if opening else block.signature,
        }
    tool_input = {} if opening else orjson.loads(block.input_json)
    return {"type": "tool_use", "id": block.id, "name": block.name, "input": tool_input}


def _text(number: int, body: Body, given: MessagesInput, max_tokens: int) -> tuple[str, str, str | None]:
    """The answer text, its stop reason and the stop sequence that ended it."""
    if given.tool_results:
        reply = f"Fake reply #{number} with tool output: " + "; ".join(given.tool_results)
    else:
        reply = f"Fake reply #{number} to: {given.user_text}"
    config = body.get("output_config")
    text = formatted(
        reply, read_format(config.get("format"), "output_config.format") if isinstance(config, dict) else TEXT
    )
    found = [(text.find(stop), stop) for stop in _stop_sequences(body) if stop and stop in text]
    if found:
        at, stop = min(found)
        return text[:at], "stop_sequence", stop
    text, cut = truncate(text, max_tokens)
    return text, "max_tokens" if cut else "end_turn", None


def _thinks(body: Body, max_tokens: int) -> bool:
    """Whether the request turns extended thinking on.

    Raises:
        RequestRejected: an enabled budget is below the minimum or not below `max_tokens`, as the API checks.
    """
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return False
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if type(budget) is not int or budget < MIN_THINKING_BUDGET:
            raise RequestRejected(400, f"thinking.budget_tokens: must be at least {MIN_THINKING_BUDGET}")
        if budget >= max_tokens:
            raise RequestRejected(400, "max_tokens must be greater than thinking.budget_tokens")
    return True


def _thinking(number: int, given: MessagesInput) -> ThinkingBlock:
    thought = f"Fake thought #{number} about: {given.user_text}"
    signature = base64.b64encode(hashlib.sha256(thought.encode()).digest()).decode("ascii")
    return ThinkingBlock(thought, signature)


def _tool_use(number: int, k: int, tool: ToolSpec, given: MessagesInput) -> ToolUseBlock:
    return ToolUseBlock(
        f"toolu_fake_{number}" + (f"-{k}" if k else ""), tool.name, tool_arguments(tool, given.user_text)
    )


def _tool_specs(body: Body) -> list[ToolSpec]:
    """Client tools (`tools[].input_schema` are their schemas); server tools are never called."""
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise RequestRejected(400, "tools: Input should be a valid list", param="tools")
    return [
        ToolSpec(tool["name"], tool["input_schema"])
        for tool in tools or []
        if isinstance(tool, dict)
        and isinstance(tool.get("name"), str)
        and tool["name"]
        and isinstance(tool.get("input_schema"), dict)
    ]


def _tool_choice(body: Body) -> ToolChoice:
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return ToolChoice()
    parallel = choice.get("disable_parallel_tool_use") is not True
    kind = choice.get("type")
    if kind == "tool":
        return ToolChoice("named", str(choice.get("name", "tool")), parallel)
    if kind in ("none", "any"):
        return ToolChoice("none" if kind == "none" else "required", parallel=parallel)
    return ToolChoice(parallel=parallel)


def _stop_sequences(body: Body) -> list[str]:
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(stop, str) for stop in stops)):
        raise RequestRejected(400, "stop_sequences: Input should be a valid list of strings", param="stop_sequences")
    return list(stops or [])


def _block_words(block: ContentBlock) -> str:
    if isinstance(block, TextBlock):
        return block.text
    return block.thinking if isinstance(block, ThinkingBlock) else block.input_json
