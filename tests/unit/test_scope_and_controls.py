"""Tenant scope and per-request controls (pure)."""

from __future__ import annotations

import hashlib

import pytest

from llmproxy.errors import InvalidRequestError
from llmproxy.proxy.controls import cache_control_directives, read_controls, requested_threshold, requested_ttl
from llmproxy.proxy.scope import ANONYMOUS_TENANT, SHARED_TENANT, bearer_token, caller_credentials, scope_id, tenant_id
from llmproxy.settings import CacheSettings, SemanticSettings

CACHE = CacheSettings(default_ttl_s=600, min_ttl_s=5, max_ttl_s=3600)
SEMANTIC = SemanticSettings(threshold=0.1, min_threshold=0.02, max_threshold=0.2)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer sk-1", "sk-1"), ("bearer  sk-2 ", "sk-2"), ("Basic abc", None), ("Bearer ", None), (None, None)],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def tenant(*headers: tuple[str, str], shared: bool = False, anonymous: bool = False) -> str | None:
    return tenant_id(caller_credentials(headers), shared=shared, anonymous=anonymous)


def test_scope_is_a_digest_of_the_key_never_the_key() -> None:
    scope = tenant(("Authorization", "Bearer sk-secret"))
    assert scope is not None and "sk-secret" not in scope
    assert scope == hashlib.sha256(b"sk-secret").hexdigest()[:32]  # as in earlier releases
    assert tenant(("authorization", "Bearer sk-other")) != scope


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("Authorization", "Basic YTpi")], [("authorization", "basic YTpi")]),
        ([("API-Key", " k1 "), ("x-api-key", "k2")], [("api-key", "k1"), ("x-api-key", "k2")]),
        ([("x-api-key", "k2"), ("api-key", "k1"), ("api-key", "k1")], [("api-key", "k1"), ("x-api-key", "k2")]),
        ([("authorization", "sk-bare")], [("authorization", "sk-bare")]),
        ([("authorization", "Bearer"), ("api-key", ""), ("x-other", "k")], []),
    ],
)
def test_credentials_are_every_credential_header_normalised(
    headers: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    assert list(caller_credentials(headers)) == expected


def test_other_credentials_are_digests_of_name_value_lines() -> None:
    assert tenant(("api-key", "k1")) == hashlib.sha256(b"api-key: k1\n").hexdigest()[:32]
    both = hashlib.sha256(b"api-key: k1\nauthorization: bearer k0\n").hexdigest()[:32]
    assert tenant(("Authorization", "Bearer k0"), ("api-key", "k1")) == both
    assert len({tenant(("api-key", "k")), tenant(("x-api-key", "k")), tenant(("authorization", "Bearer k"))}) == 3


def test_namespace_shared_and_anonymous_scopes() -> None:
    assert scope_id("0" * 32, "team") == "0" * 32 + "/team"
    assert tenant(("api-key", "k"), shared=True) == tenant(shared=True) == SHARED_TENANT
    assert tenant() is None
    assert tenant(anonymous=True) == ANONYMOUS_TENANT


@pytest.mark.parametrize("namespace", ["", "a b", "x" * 65, "../etc", "tenant/other"])
def test_bad_namespaces_are_rejected(namespace: str) -> None:
    with pytest.raises(InvalidRequestError):
        read_controls({"x-llmproxy-namespace": namespace}, CACHE, SEMANTIC)


def test_default_controls_look_up_and_store_with_the_default_ttl() -> None:
    controls = read_controls({}, CACHE, SEMANTIC)
    assert (controls.lookup, controls.store, controls.ttl_s, controls.namespace) == (True, True, 600, None)


@pytest.mark.parametrize(
    ("cache_control", "lookup", "store"),
    [
        ("no-cache", False, True),
        ("no-store", True, False),
        ("No-Cache, no-store", False, False),
        ("max-age=0", True, True),
    ],
)
def test_cache_control_directives(cache_control: str, lookup: bool, store: bool) -> None:
    controls = read_controls({"cache-control": cache_control}, CACHE, SEMANTIC)
    assert (controls.lookup, controls.store) == (lookup, store)


def test_disabled_cache_neither_looks_up_nor_stores() -> None:
    controls = read_controls({}, CacheSettings(enabled=False), SEMANTIC)
    assert (controls.lookup, controls.store) == (False, False)


@pytest.mark.parametrize(
    ("asked", "granted"),
    [("1", 5), ("60", 60), ("999999", 3600), (" 0060 ", 60), ("9" * 5000, 3600), ("0" * 30 + "60", 60)],
)
def test_ttl_is_clamped_to_bounds(asked: str, granted: int) -> None:
    assert requested_ttl(asked, CACHE) == granted


@pytest.mark.parametrize("asked", ["0", "-1", "1.5", "soon", "", "000", "²", "1³", "١٢", "１２", "+5"])
def test_malformed_ttl_is_rejected(asked: str) -> None:
    with pytest.raises(InvalidRequestError):
        requested_ttl(asked, CACHE)


def test_directives_parse_values_and_spacing() -> None:
    assert cache_control_directives(" no-cache ,max-age=5") == frozenset({"no-cache", "max-age"})


@pytest.mark.parametrize(("asked", "granted"), [(None, None), ("0.15", 0.15), ("0", 0.02), ("0.9", 0.2)])
def test_threshold_header_is_clamped_to_operator_bounds(asked: str | None, granted: float | None) -> None:
    assert requested_threshold(asked, SEMANTIC) == granted


@pytest.mark.parametrize("asked", ["close", "-0.1", "1.5", "nan"])
def test_malformed_threshold_is_rejected(asked: str) -> None:
    with pytest.raises(InvalidRequestError):
        requested_threshold(asked, SEMANTIC)
