"""Anthropic token counting (`POST /v1/messages/count_tokens`): deterministic, cached by exact match only, never
streamed, like embeddings.

The same conversation always counts the same, so the answer is stored under the request's exact key; a
paraphrase counts differently, so there is no semantic view.
"""

from __future__ import annotations

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.anthropic import AnthropicProtocol
from llmproxy.protocols.base import ParsedRequest, RequestHeaders
from llmproxy.protocols.deterministic import Deterministic
from llmproxy.protocols.json_body import validated
from llmproxy.protocols.messages import ConversationRequest
from llmproxy.trace import TokenUsage


class CountTokensProtocol(Deterministic, AnthropicProtocol):
    name = "count_tokens"
    path = "/v1/messages/count_tokens"

    def parse(self, raw: bytes, headers: RequestHeaders) -> ParsedRequest:
        body, request = validated(ConversationRequest, raw)
        return ParsedRequest(body, request.model, stream=False, key_headers=self.headers_in_key(headers))

    def is_complete(self, answer: JsonObject) -> bool:
        count = answer.get("input_tokens")
        return isinstance(count, int) and not isinstance(count, bool)

    def usage(self, answer: JsonObject) -> TokenUsage | None:
        return None  # counting is free: a hit saves no tokens


COUNT_TOKENS = CountTokensProtocol()
