"""Chat answers written straight through the cache classes (L1, L2 and catalog in one write-back), with a clock set
in the past: the invalidation tests' old entries, which no request could make."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from redis.asyncio import Redis as AsyncRedis

from llmproxy.cache.catalog.index import Catalog, catalog_record
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.keys import request_key
from llmproxy.cache.semantic import Partition, SemanticIndex, SemanticRecord
from llmproxy.cache.writeback import StorePlan, WriteBack
from llmproxy.protocols.chat import CHAT
from llmproxy.settings import HnswSettings

DIMENSIONS = 384


async def store_aged_answers(redis_url: str, prefix: str, scope: str, prompts: list[str], age_s: float) -> list[str]:
    """Store an answer to each prompt in `scope`, as if written `age_s` ago; their entry ids."""
    client = AsyncRedis.from_url(redis_url)
    aged = lambda: time.time() - age_s  # noqa: E731 - the clock both the index and the write-back read
    exact, catalog = ExactCache(client, prefix), Catalog(client, prefix)
    index = SemanticIndex(client, prefix, DIMENSIONS, HnswSettings(), clock=aged)
    write_back = WriteBack(client, exact, index, aged, catalog)
    ids = []
    for number, prompt in enumerate(prompts):
        body = {"model": "fake-model", "messages": [{"role": "user", "content": prompt}]}
        entry_id = request_key(CHAT, scope, body)
        key = exact.key(scope, entry_id)
        vector = np.random.default_rng(number).normal(size=DIMENSIONS).astype(np.float32)
        record = SemanticRecord(Partition(scope, "fake-model", "p", "c"), prompt, key, vector / np.linalg.norm(vector))
        listing = catalog_record(CHAT, body, scope, "fake-model", key)
        outcome = await write_back.store(StorePlan(key, CHAT, "fake-model", 3_600, record, listing), answer(prompt))
        assert outcome == "stored"
        ids.append(entry_id)
    await client.aclose()
    return ids


def answer(text: str) -> dict[str, Any]:
    """A complete chat completion answering `text`."""
    message = {"role": "assistant", "content": f"answer to {text}"}
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
