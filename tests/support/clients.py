"""Clients as tests build them: each sends its credential and the test's fake-upstream recorder header.

The proxy forwards X-Fake-* headers to the fake, so a client built here counts its upstream calls in the test's
own recorder (`FakeUpstream.calls`), whether it talks to the shared proxy, a proxy the test started, or the fake.
"""

from __future__ import annotations

from typing import Any

from anthropic import Anthropic
from openai import AsyncOpenAI, OpenAI

from tests.support.upstream import FakeUpstream

SDK_OPTIONS: dict[str, Any] = {"max_retries": 0, "timeout": 30}  # a test sees each failure, never a hidden retry


def caller_headers(api_key: str, fake: FakeUpstream) -> dict[str, str]:
    """A caller's headers for httpx: the Bearer API key and the fake's recorder header."""
    return {"authorization": f"Bearer {api_key}", **fake.headers}


def openai_sdk(url: str, api_key: str, fake: FakeUpstream, **options: Any) -> OpenAI:
    """An OpenAI SDK client of the server at `url` (its root, without /v1); `options` go to OpenAI(...)."""
    return OpenAI(base_url=url + "/v1", api_key=api_key, default_headers=fake.headers, **(SDK_OPTIONS | options))


def async_openai_sdk(url: str, api_key: str, fake: FakeUpstream, **options: Any) -> AsyncOpenAI:
    """The asyncio twin of `openai_sdk`."""
    return AsyncOpenAI(base_url=url + "/v1", api_key=api_key, default_headers=fake.headers, **(SDK_OPTIONS | options))


def anthropic_sdk(url: str, fake: FakeUpstream, **options: Any) -> Anthropic:
    """An Anthropic SDK client of the server at `url` (its root); the credential (`api_key=` or `auth_token=`) and
    other `options` go to Anthropic(...)."""
    return Anthropic(base_url=url, default_headers=fake.headers, **(SDK_OPTIONS | options))
