"""Other /v1/* routes are forwarded untouched: method, query, body and headers, streamed both ways."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
from openai import OpenAI

from tests.support.clients import caller_headers
from tests.support.upstream import FakeUpstream


def test_models_list_passes_through(client: OpenAI, upstream: FakeUpstream) -> None:
    models = client.models.list()
    assert {model.id for model in models.data} >= {"fake-model", "fake-model-mini"}
    assert upstream.calls("/v1/models") == 1


def test_method_query_body_and_headers_pass_through(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    response = httpx.request(
        "PATCH",
        proxy_url + "/v1/echo/files/abc",
        params={"purpose": "batch", "limit": "2"},
        content="déjà vu body".encode(),
        headers=caller_headers(api_key, upstream)
        | {"x-custom": "kept", "proxy-authorization": "Basic c2VjcmV0", "keep-alive": "timeout=5"},
    )
    echoed = response.json()
    assert response.status_code == 200
    assert (echoed["method"], echoed["path"], echoed["query"]) == (
        "PATCH",
        "/v1/echo/files/abc",
        "purpose=batch&limit=2",
    )
    assert echoed["headers"]["x-custom"] == "kept"
    assert echoed["headers"]["authorization"] == f"Bearer {api_key}"
    assert echoed["body"] == "déjà vu body"
    assert not {"proxy-authorization", "keep-alive"} & set(echoed["headers"]), "hop-by-hop headers stay here"
    assert "x-cache" not in response.headers


def test_delete_without_body_passes_through(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    response = httpx.delete(proxy_url + "/v1/echo/models/ft-1", headers=caller_headers(api_key, upstream))
    assert response.json()["method"] == "DELETE"
    assert response.json()["body"] == ""


def test_upstream_404_passes_through_with_its_status(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    response = httpx.get(proxy_url + "/v1/does-not-exist", headers=caller_headers(api_key, upstream))
    assert response.status_code == 404
    assert response.json()["error"]["message"]


def test_configured_upstream_key_replaces_the_callers(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(upstream={"api_key": "sk-operator-key"}) as url:
        echoed = httpx.get(url + "/v1/echo/whoami", headers=caller_headers(api_key, upstream)).json()
    assert echoed["headers"]["authorization"] == "Bearer sk-operator-key"


def test_other_methods_on_a_cached_path_pass_through(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    # GET /v1/chat/completions lists stored completions upstream; only POST is ours to cache.
    response = httpx.get(proxy_url + "/v1/chat/completions?limit=1", headers=caller_headers(api_key, upstream))
    assert upstream.calls("/v1/chat/completions") == 1
    assert upstream.requests()[-1]["method"] == "GET"
    assert response.status_code == 404 and "x-cache" not in response.headers
