"""The optional verifier model (semantic.verifier_model) through the proxy: real models, real Redis Stack.

The only sentence-transformers model installed here is all-MiniLM-L6-v2, so the verifier is that same model, named
by its folder (loaded a second time, as a verifier). Its distances then equal the primary model's: these tests show
where the verifier's vector is stored, which candidates it is consulted for, how entries stored without its vector
are verified, and that its cost is measured; not that a stronger model decides better (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pytest
import redis

from llmproxy.embeddings.model_files import default_model_path
from tests.support.admin import AdminProxy, chat, running_admin_proxy
from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream, metric

STORED = "How do I reset my password?"
NEAR = "how can I reset my password"  # distance ≈ 0.015
FARTHER = "How do I recover my password?"  # distance ≈ 0.11
NO_GUARDS = {"guards": False, "threshold": 0.2}


@pytest.fixture
def start(
    start_proxy: Callable[..., AbstractContextManager[str]],
    key_prefix: str,
    redis_client: redis.Redis,
    upstream: FakeUpstream,
) -> Callable[..., AbstractContextManager[AdminProxy]]:
    """Start a proxy with these semantic settings, on this test's key prefix."""

    def started(**semantic: Any) -> AbstractContextManager[AdminProxy]:
        return running_admin_proxy(start_proxy, key_prefix, redis_client, upstream, semantic=semantic)

    return started


@pytest.fixture
def verifying(start: Callable[..., AbstractContextManager[AdminProxy]]) -> Iterator[AdminProxy]:
    with start(**NO_GUARDS, verifier_model=str(default_model_path()), verifier_max_distance=0.05) as proxy:
        yield proxy


def l2_document(proxy: AdminProxy) -> dict[bytes, bytes]:
    keys = list(proxy.redis.scan_iter(match=f"{proxy.prefix}:l2:*"))
    assert len(keys) == 1
    document: dict[bytes, bytes] = proxy.redis.hgetall(keys[0])  # type: ignore[assignment]
    return document


def test_entry_stores_the_verifier_vector(verifying: AdminProxy, api_key: str) -> None:
    sdk = verifying.sdk(api_key)
    assert chat(sdk, STORED) == "MISS"
    verifying.new_ids("l2", frozenset())
    vector = np.frombuffer(l2_document(verifying)[b"verifier_vector"], dtype=np.float32)
    assert vector.shape == (384,)
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-4)


def test_verifier_is_consulted_only_within_its_loose_distance(verifying: AdminProxy, api_key: str) -> None:
    sdk = verifying.sdk(api_key)
    chat(sdk, STORED)
    verifying.new_ids("l2", frozenset())
    assert chat(sdk, NEAR) == "HIT-L2"
    # Within the threshold (0.2) but beyond the verifier's loose distance (0.05): a miss.
    assert chat(sdk, FARTHER) == "MISS"
    verified = metric(verifying.url, "llmproxy_stage_duration_seconds_count", stage="verify")
    assert verified >= 2  # its cost is measured on every lookup that had candidates


def test_same_candidate_is_a_hit_without_the_verifier(
    start: Callable[..., AbstractContextManager[AdminProxy]], api_key: str
) -> None:
    with start(**NO_GUARDS) as proxy:
        sdk = proxy.sdk(api_key)
        chat(sdk, STORED)
        proxy.new_ids("l2", frozenset())
        assert chat(sdk, FARTHER) == "HIT-L2"
        assert metric(proxy.url, "llmproxy_stage_duration_seconds_count", stage="verify") == 0


def test_entry_stored_before_the_verifier_is_verified_from_its_prompt(
    start: Callable[..., AbstractContextManager[AdminProxy]],
    start_proxy: Callable[..., AbstractContextManager[str]],
    key_prefix: str,
    upstream: FakeUpstream,
    api_key: str,
) -> None:
    # A proxy without the verifier stores the entry (and leaves its index in place when it stops).
    with (
        start_proxy(redis={"key_prefix": key_prefix}, semantic=NO_GUARDS) as url,
        openai_sdk(url, api_key, upstream) as sdk,
    ):
        assert chat(sdk, STORED) == "MISS"
    with start(**NO_GUARDS, verifier_model=str(default_model_path()), verifier_max_distance=0.05) as after:
        after.new_ids("l2", frozenset())
        assert b"verifier_vector" not in l2_document(after)
        assert chat(after.sdk(api_key), NEAR) == "HIT-L2"
        assert b"verifier_vector" not in l2_document(after)  # computed for the lookup, not written back
