"""When the fake calls a tool, which one, and with what arguments: one rule for every protocol.

The fake calls tools only when the request offers some and its tool choice allows it:

- `none` (chat/Responses `"none"`, Anthropic `{"type": "none"}`): never;
- forced (`"required"`, Anthropic `any`): the tools the prompt mentions, else the first tool;
- named (chat `{"type": "function", "function": {"name"}}`, Responses `{"type": "function", "name"}`,
  Anthropic `{"type": "tool", "name"}`): that tool, always;
- auto (or unset): only when the latest turn is the user's (never right after a tool result, so an agent
  loop ends) and the prompt mentions a tool by name (a whole word, case-insensitive; `get_weather` also as
  "get weather") or asks for one ("use a tool", "call the tools", ...): the mentioned tools, else the first.

Several mentioned tools are all called, in the order the request lists them, unless parallel calls are off
(`parallel_tool_calls: false`, Anthropic `disable_parallel_tool_use`): then only the first. The arguments are
`instance_of(parameters, prompt)`: valid under the tool's JSON schema, so `{"input": <prompt>}` for a tool
whose schema declares no required properties.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

from llmproxy.fake_upstream.schema_instances import instance_of

ChoiceMode = Literal["none", "auto", "required", "named"]
_ASKS_FOR_A_TOOL = re.compile(r"\b(use|call)\s+(a\s+|an\s+|the\s+|your\s+|any\s+|some\s+)?tools?\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function tool the request offers: its name and the JSON schema of its arguments."""

    name: str
    schema: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """How the request lets the fake pick tools."""

    mode: ChoiceMode = "auto"
    name: str | None = None  # the tool a `named` choice forces
    parallel: bool = True


def openai_tool_choice(body: Mapping[str, object], named: object, *, required: bool = False) -> ToolChoice:
    """`tool_choice` and `parallel_tool_calls` as OpenAI's APIs spell them.

    The caller reads what differs between chat and Responses: `named`, the forced function's name (chat nests it
    under `function`; anything but a string: none is forced), and `required`, a forced choice spelled otherwise.
    """
    choice = body.get("tool_choice")
    parallel = body.get("parallel_tool_calls") is not False
    if choice in ("none", "required"):
        return ToolChoice("none" if choice == "none" else "required", parallel=parallel)
    if isinstance(named, str):
        return ToolChoice("named", named, parallel)
    if required:
        return ToolChoice("required", parallel=parallel)
    return ToolChoice("auto", parallel=parallel)


def tools_to_call(tools: Sequence[ToolSpec], choice: ToolChoice, prompt: str, user_turn: bool) -> tuple[ToolSpec, ...]:
    """The tools the fake calls for this request, in order; empty for a text answer."""
    if not tools or choice.mode == "none":
        return ()
    if choice.mode == "named":
        named = next(
            (tool for tool in tools if tool.name == choice.name), ToolSpec(choice.name or "tool", {"type": "object"})
        )
        return (named,)
    mentioned = tuple(tool for tool in tools if _mentions(prompt, tool.name))
    if choice.mode == "auto" and not (user_turn and (mentioned or _ASKS_FOR_A_TOOL.search(prompt))):
        return ()
    called = mentioned or (tools[0],)
    return called if choice.parallel else called[:1]


def tool_arguments(tool: ToolSpec, prompt: str) -> str:
    """The call's arguments as compact JSON text, valid under the tool's schema (always an object)."""
    arguments = instance_of(tool.schema, prompt)
    return orjson.dumps(arguments if isinstance(arguments, dict) else {"input": arguments}).decode()


def _mentions(prompt: str, name: str) -> bool:
    spellings = {re.escape(name), re.escape(re.sub(r"[_\-]+", " ", name))}
    return re.search(rf"(?<!\w)({'|'.join(spellings)})(?!\w)", prompt, re.IGNORECASE) is not None
