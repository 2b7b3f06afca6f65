"""Listing, searching, inspecting and deleting cached entries through the admin API; access and config."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.support.admin import ADMIN_TOKEN, AdminProxy, chat, embed, tenant
from tests.support.servers import free_port
from tests.support.upstream import FakeUpstream

QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"
OTHER = "What is the capital of France?"


@pytest.fixture
def alice(admin_proxy: AdminProxy, upstream: FakeUpstream) -> OpenAI:
    return admin_proxy.sdk(f"sk-alice-{uuid.uuid4().hex}")


def only(listed: dict[str, Any]) -> dict[str, Any]:
    assert listed["total"] == 1 == len(listed["entries"]), listed
    entry: dict[str, Any] = listed["entries"][0]
    return entry


def test_listing_shows_entries_newest_first_with_their_details(admin_proxy: AdminProxy, alice: OpenAI) -> None:
    chat(alice, QUESTION)
    chat(alice, OTHER, namespace="team", model="fake-model-mini")
    embed(alice, "some text to embed")
    listed = admin_proxy.entries()
    assert listed["total"] == 3
    assert [entry["kind"] for entry in listed["entries"]] == ["embedding", "chat", "chat"]
    newest_chat, oldest = listed["entries"][1], listed["entries"][2]
    alice_tenant = tenant(alice.api_key)
    assert newest_chat | {"id": "", "created_at": 0, "expires_in_s": 0} == {
        "id": "",
        "scope": f"{alice_tenant}/team",
        "tenant": alice_tenant,
        "namespace": "team",
        "model": "fake-model-mini",
        "kind": "chat",
        "prompt": OTHER,
        "created_at": 0,
        "expires_in_s": 0,
        "semantic": True,
        "promoted_from": None,
    }
    assert (oldest["namespace"], oldest["scope"], oldest["prompt"]) == (None, alice_tenant, QUESTION)
    assert 86_390 < oldest["expires_in_s"] <= 86_400
    assert listed["entries"][0]["semantic"] is False  # embeddings are cached exactly only


def test_listing_filters_and_pages(admin_proxy: AdminProxy, alice: OpenAI) -> None:
    for number in range(5):
        chat(alice, f"Question number {number}?", namespace="team" if number % 2 else None)
    assert admin_proxy.entries(namespace="team")["total"] == 2
    assert admin_proxy.entries(tenant=tenant(alice.api_key), model="other-model")["total"] == 0
    assert admin_proxy.entries(kind="chat", older_than="1h")["total"] == 0
    pages = [admin_proxy.entries(limit=2, offset=offset)["entries"] for offset in (0, 2, 4)]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert len({entry["id"] for page in pages for entry in page}) == 5


@pytest.mark.parametrize(
    "query", ["reverse list", "REVERSING lists", 'reverse) @scope:{x} "list*|~-', "python? [list] -reverse"]
)
def test_text_search_finds_words_in_the_prompt_whatever_the_punctuation(
    admin_proxy: AdminProxy, alice: OpenAI, query: str
) -> None:
    chat(alice, QUESTION)
    chat(alice, OTHER)
    response = admin_proxy.http.get("/admin/entries", params={"q": query})
    assert response.status_code == 200, response.text
    prompts = [entry["prompt"] for entry in response.json()["entries"]]
    assert prompts == ([] if "@scope" in query else [QUESTION])  # every word must match: "scope" and "x" do not


def test_text_search_without_a_word_is_a_400(admin_proxy: AdminProxy) -> None:
    response = admin_proxy.http.get("/admin/entries", params={"q": "?!*"})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "q")


def test_inspect_returns_the_cached_response(admin_proxy: AdminProxy, alice: OpenAI) -> None:
    content = alice.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": QUESTION}])
    entry = only(admin_proxy.entries())
    shown = admin_proxy.http.get(f"/admin/entries/{entry['id']}").json()
    assert shown["response"]["choices"][0]["message"]["content"] == content.choices[0].message.content
    assert {name: shown[name] for name in entry} == entry


def test_promoted_copy_names_its_origin(admin_proxy: AdminProxy, alice: OpenAI) -> None:
    chat(alice, QUESTION)
    original = only(admin_proxy.entries())
    assert chat(alice, PARAPHRASE) == "HIT-L2"
    # A copy has its origin's creation time: told apart by id.
    copy = next(entry for entry in admin_proxy.entries()["entries"] if entry["id"] != original["id"])
    assert (copy["promoted_from"], copy["prompt"], copy["semantic"]) == (original["id"], PARAPHRASE, False)
    assert copy["created_at"] == original["created_at"]
    assert 0 < copy["expires_in_s"] <= original["expires_in_s"]


def test_delete_takes_the_entry_and_its_promoted_copies_everywhere(admin_proxy: AdminProxy, alice: OpenAI) -> None:
    chat(alice, QUESTION)
    chat(alice, OTHER)
    original = admin_proxy.entries(q="reverse")["entries"][0]
    chat(alice, PARAPHRASE)  # promoted copy of the original
    kept = admin_proxy.entries(q="capital")["entries"][0]["id"]
    response = admin_proxy.http.delete(f"/admin/entries/{original['id']}")
    assert response.json() == {"deleted": 2, "audited": True}
    assert admin_proxy.snapshot() == {"l1": {kept}, "l2": {kept}, "cat": {kept}}
    assert admin_proxy.http.delete(f"/admin/entries/{original['id']}").status_code == 404
    assert (chat(alice, QUESTION), chat(alice, PARAPHRASE), chat(alice, OTHER)) == ("MISS", "HIT-L2", "HIT-L1")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_entry_is_a_404_and_a_malformed_id_a_400(admin_proxy: AdminProxy, method: str) -> None:
    missing = admin_proxy.http.request(method, f"/admin/entries/{'ab' * 32}")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    malformed = admin_proxy.http.request(method, "/admin/entries/not-a-hash")
    assert (malformed.status_code, malformed.json()["error"]["param"]) == (400, "id")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, None),
        ({"dry_run": True}, None),
        ({"modle": "x"}, "modle"),
        ({"kind": "image"}, "kind"),
        ({"older_than": "yesterday"}, "older_than"),
        ({"older_than": -5}, "older_than"),
        ({"tenant": "not-a-tenant"}, "tenant"),
        ({"scope": "anonymous/bad namespace"}, "scope"),
        ({"model": "fake-model", "dry_run": "yes"}, "dry_run"),
        ({"model": "fake-model", "distance": 0.1}, "distance"),
        ({"prompt": "hello", "distance": 3}, "distance"),
    ],
)
def test_invalid_invalidation_is_a_400_naming_the_field(
    admin_proxy: AdminProxy, body: dict[str, Any], param: str | None
) -> None:
    response = admin_proxy.invalidate(**body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_query_parameter_is_a_400(admin_proxy: AdminProxy) -> None:
    response = admin_proxy.http.get("/admin/entries", params={"namespce": "team"})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "namespce")


ADMIN_CALLS = [
    ("GET", "/admin/entries", None),
    ("GET", f"/admin/entries/{'ab' * 32}", None),
    ("DELETE", f"/admin/entries/{'ab' * 32}", None),
    ("POST", "/admin/invalidate", {"model": "fake-model"}),
    ("POST", "/admin/flush", {"confirm": "flush-all"}),
    ("GET", "/admin/audit", None),
    ("GET", "/admin/config", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_admin_calls_need_the_token(admin_proxy: AdminProxy, method: str, path: str, body: Any) -> None:
    for headers in ({}, {"authorization": "Bearer wrong-token"}, {"authorization": f"Basic {ADMIN_TOKEN}"}):
        response = httpx.request(method, admin_proxy.url + path, json=body, headers=headers)
        assert (response.status_code, response.json()["error"]["type"]) == (401, "authentication_error")


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_admin_api_is_disabled_without_a_configured_token(proxy_url: str, method: str, path: str, body: Any) -> None:
    for headers in ({}, {"authorization": "Bearer"}, {"authorization": "Bearer anything"}):
        response = httpx.request(method, proxy_url + path, json=body, headers=headers)
        assert (response.status_code, response.json()["error"]["type"]) == (403, "permission_denied_error")


def test_admin_calls_answer_503_while_redis_is_down(
    start_proxy: Callable[..., AbstractContextManager[str]], key_prefix: str
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = {"redis": {"key_prefix": key_prefix, "url": dead}, "semantic": {"enabled": False}}
    with start_proxy(**settings, redis_url=dead, admin={"token": ADMIN_TOKEN}) as url:
        for method, path, body in ADMIN_CALLS[:-1]:  # all but /admin/config, which needs no Redis
            response = httpx.request(method, url + path, json=body, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
            assert (response.status_code, response.json()["error"]["type"]) == (503, "service_unavailable"), path


def test_config_shows_the_effective_settings_without_secrets(
    start_proxy: Callable[..., AbstractContextManager[str]], redis_url: str, key_prefix: str
) -> None:
    password_url = redis_url.replace("redis://", "redis://default:hunter2-redis-pw@")
    with start_proxy(
        redis={"key_prefix": key_prefix, "url": password_url},
        redis_url=password_url,  # the proxy really connects with it: a password Redis ignores when none is set
        admin={"token": ADMIN_TOKEN},
        upstream={"api_key": "sk-upstream-secret-value"},
        upstreams={"cheap": {"base_url": "https://user:upstream-url-pw@cheap.example/v1", "api_key": "sk-cheap-key"}},
        semantic={"enabled": False},
    ) as url:
        response = httpx.get(url + "/admin/config", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    body = response.text
    for secret in (ADMIN_TOKEN, "sk-upstream-secret-value", "hunter2-redis-pw", "upstream-url-pw", "sk-cheap-key"):
        assert secret not in body
    config = response.json()
    assert config["redis"]["url"].startswith("redis://default:**********@127.0.0.1:")
    assert config["admin"]["token"] == config["upstream"]["api_key"] == "**********"
    assert config["redis"]["key_prefix"] == key_prefix
    assert config["semantic"]["enabled"] is False
