"""Scale-out: two proxies sharing one Redis serve each other's cached answers (L1 and L2)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream


def x_cache(proxy: str, api_key: str, fake: FakeUpstream, text: str) -> str:
    with openai_sdk(proxy, api_key, fake) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="fake-model", messages=[{"role": "user", "content": text}]
        )
        return raw.headers["x-cache"]


def test_replicas_serve_each_others_cache(
    start_proxy: Callable[..., AbstractContextManager[str]], key_prefix: str, api_key: str, upstream: FakeUpstream
) -> None:
    shared = {"key_prefix": key_prefix}
    with start_proxy(redis=shared) as first, start_proxy(redis=shared) as second:
        stored = x_cache(first, api_key, upstream, "How do I reverse a list in Python?")
        exact = x_cache(second, api_key, upstream, "How do I reverse a list in Python?")
        paraphrase = x_cache(second, api_key, upstream, "How can I reverse a list in Python?")
        promoted = x_cache(first, api_key, upstream, "How can I reverse a list in Python?")
    assert (stored, exact, paraphrase, promoted) == ("MISS", "HIT-L1", "HIT-L2", "HIT-L1")
    assert upstream.calls() == 1
