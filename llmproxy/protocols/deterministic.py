"""What a protocol with deterministic answers does alike (embeddings, Anthropic's token counts): exact match only,
never streamed, never routed (pure).

The same request always gets the same answer, and a paraphrase gets another one: only the exact key may answer.
"""

from __future__ import annotations

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest, SemanticView, StreamAssembler, WireProtocol


class Deterministic(WireProtocol):
    """Mixed in before the family's protocol class: no semantic view, no stream, no fixed answer."""

    def semantic_view(self, body: JsonObject) -> SemanticView | None:
        return None  # the answer to one text is not the answer to its paraphrase

    def assembler(self, parsed: ParsedRequest, *, want_usage: bool) -> StreamAssembler:
        raise TypeError(f"{self.name} answers are never streamed")

    def replay(self, answer: JsonObject, parsed: ParsedRequest) -> bytes:
        raise TypeError(f"{self.name} answers are never streamed")

    def fixed_answer(self, model: str, text: str, answer_id: str, created: int) -> JsonObject:
        # Only requests with a semantic view are routed; these never are.
        raise TypeError(f"a {self.name} request is never answered with a fixed text")
