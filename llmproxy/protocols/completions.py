"""Legacy completions (`POST /v1/completions`): validation, the L2 view, the prompt shown, the stream's choices.

Only a single string prompt is compared by meaning; batched prompts and token arrays are exact-match only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest, RequestHeaders, SemanticView, cut
from llmproxy.protocols.json_body import validated
from llmproxy.protocols.openai import GenerationRequest, shown_texts
from llmproxy.protocols.openai_stream import Choice, ChunkedProtocol, Lists, Text
from llmproxy.protocols.text_pieces import text_pieces

_LOGPROB_KEYS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")


class CompletionRequest(GenerationRequest):
    prompt: str | list[Any]


class CompletionsProtocol(ChunkedProtocol):
    name = "completion"
    path = "/v1/completions"
    response_object = "text_completion"
    chunk_object = "text_completion"

    def parse(self, raw: bytes, headers: RequestHeaders) -> ParsedRequest:
        body, request = validated(CompletionRequest, raw)
        stream = bool(request.stream)
        return ParsedRequest(body, request.model, stream, self.headers_in_key(headers))

    def semantic_view(self, body: JsonObject) -> SemanticView | None:
        params = self.key_fields(body)
        params.pop("model", None)
        prompt = params.pop("prompt", None)
        return SemanticView(prompt=prompt, params=params, context=[]) if isinstance(prompt, str) else None

    def display_prompt(self, body: JsonObject, limit: int) -> str:
        return cut(shown_texts(body.get("prompt"), limit), limit)

    def fixed_answer(self, model: str, text: str, answer_id: str, created: int) -> JsonObject:
        choice: JsonObject = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        return {"id": answer_id, "object": "text_completion", "created": created, "model": model,
                "choices": [choice], "usage": usage}  # fmt: skip

    def new_choice(self, index: int) -> Choice:
        return _TextChoice(index)

    def choice_chunks(self, choice: JsonObject) -> list[JsonObject]:
        index = choice.get("index", 0)
        pieces = text_pieces(choice.get("text") or "")
        # The logprobs go with the first piece: assembly concatenates them whatever the pieces.
        chunks = [
            {"text": piece, "index": index, "logprobs": choice.get("logprobs") if number == 0 else None,
             "finish_reason": None}
            for number, piece in enumerate(pieces)
        ]  # fmt: skip
        chunks.append({"text": "", "index": index, "logprobs": None, "finish_reason": choice.get("finish_reason")})
        return chunks


COMPLETIONS = CompletionsProtocol()


@dataclass(slots=True)
class _TextChoice:
    index: int
    finish_reason: str | None = None
    text: Text = field(default_factory=Text)
    logprobs: Lists = field(default_factory=lambda: Lists(_LOGPROB_KEYS))

    def add(self, choice: JsonObject) -> None:
        self.text.add(choice, "text")
        self.logprobs.add(choice.get("logprobs"))
        self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def value(self) -> JsonObject:
        return {
            "text": self.text.value() or "",
            "index": self.index,
            "logprobs": self.logprobs.value(),
            "finish_reason": self.finish_reason,
        }
