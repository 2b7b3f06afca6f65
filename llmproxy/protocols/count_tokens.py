"""Anthropic token counting (`POST /v1/messages/count_tokens`): deterministic, cached by exact match only, never
streamed, like embeddings.

The same conversation always counts the same, so the answer is stored under the request's exact key; a
paraphrase counts differently, so there is no semantic view.
"""

from __future__ import annotations

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.anthropic import AnthropicProtocol
from llmproxy.protocols.base import ParsedRequest, RequestHeaders, SemanticView, StreamAssembler
from llmproxy.protocols.json_body import validated
from llmproxy.protocols.messages import ConversationRequest
from llmproxy.trace import TokenUsage


class CountTokensProtocol(AnthropicProtocol):
    name = "count_tokens"
    path = "/v1/messages/count_tokens"

    def parse(self, raw: bytes, headers: RequestHeaders) -> ParsedRequest:
        body, request = validated(ConversationRequest, raw)
        return ParsedRequest(body, request.model, stream=False, key_headers=self.headers_in_key(headers))

    def semantic_view(self, body: JsonObject) -> SemanticView | None:
        return None  # a paraphrase has another count

    def is_complete(self, answer: JsonObject) -> bool:
        count = answer.get("input_tokens")
        return isinstance(count, int) and not isinstance(count, bool)

    def usage(self, answer: JsonObject) -> TokenUsage | None:
        return None  # counting is free: a hit saves no tokens

    def assembler(self, parsed: ParsedRequest, *, want_usage: bool) -> StreamAssembler:
        raise TypeError("token counts are never streamed")

    def replay(self, answer: JsonObject, parsed: ParsedRequest) -> bytes:
        raise TypeError("token counts are never streamed")

    def fixed_answer(self, model: str, text: str, answer_id: str, created: int) -> JsonObject:
        # Only requests with a semantic view are routed; a token count never is.
        raise TypeError("a token count is never answered with a fixed text")


COUNT_TOKENS = CountTokensProtocol()
