"""Configuration of the fake model server."""

from dataclasses import dataclass
from typing import Literal

Answers = Literal["numbered", "meaning"]  # chat text: "Fake reply #N to: ..." or a function of the prompt's meaning


@dataclass(frozen=True, slots=True)
class FakeUpstreamConfig:
    """Defaults for every request; per-request fault headers override them."""

    latency_ms: float = 0.0  # delay before any response (all /v1 routes)
    chunk_delay_ms: float = 0.0  # delay between SSE chunks (token rate)
    embedding_dim: int = 8
    answers: Answers = "numbered"  # per request: the X-Fake-Answers header
