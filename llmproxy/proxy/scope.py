"""Tenant scope of a cache entry: a digest of the credentials the caller sent, plus an optional namespace.

A credential is any `Authorization` header (Bearer, Basic or another scheme), `api-key` (Azure OpenAI) or
`x-api-key` (Anthropic). The credentials themselves never leave this module: only a SHA-256 digest of all of
them together is used as a tenant, so each combination (and each scheme) is a tenant of its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from llmproxy.errors import InvalidRequestError

SHARED_TENANT = "shared"
ANONYMOUS_TENANT = "anonymous"
NAMESPACE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
TENANT_PATTERN = rf"[0-9a-f]{{32}}|{ANONYMOUS_TENANT}|{SHARED_TENANT}"  # what tenant_id returns
CREDENTIAL_HEADERS = frozenset({"authorization", "api-key", "x-api-key"})
_NAMESPACE = re.compile(rf"^{NAMESPACE_PATTERN}$")
_SCHEMES_WITHOUT_TOKEN = frozenset({"bearer", "basic"})  # `Authorization: Bearer` alone carries no credential

Credentials = tuple[tuple[str, str], ...]  # (header name, normalised value), sorted: what identifies a caller


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def caller_credentials(headers: Iterable[tuple[str, str]]) -> Credentials:
    """Every credential header a request carries, normalised and sorted; empty ones are no credential."""
    found: set[tuple[str, str]] = set()
    for name, value in headers:
        header = name.lower()
        if header not in CREDENTIAL_HEADERS:
            continue
        normalised = _authorization(value) if header == "authorization" else value.strip()
        if normalised:
            found.add((header, normalised))
    return tuple(sorted(found))


def _authorization(value: str) -> str:
    """`<scheme> <token>` with the scheme lower-cased (schemes are case-insensitive); a bare key as it came."""
    scheme, _, token = value.strip().partition(" ")
    if token.strip():
        return f"{scheme.lower()} {token.strip()}"
    return "" if scheme.lower() in _SCHEMES_WITHOUT_TOKEN else scheme


def tenant_id(credentials: Credentials, *, shared: bool, anonymous: bool) -> str | None:
    """The tenant part of a scope, a digest so credentials are never stored.

    None: the caller sent no credential and `anonymous` is off, so it has no tenant (its request bypasses the cache).
    """
    if shared:
        return SHARED_TENANT
    if not credentials:
        return ANONYMOUS_TENANT if anonymous else None
    if len(credentials) == 1 and credentials[0][1].startswith("bearer "):
        # A lone Bearer key keeps the digest of earlier releases, so an upgrade keeps the cache.
        text = credentials[0][1].removeprefix("bearer ")
    else:
        # `name: value` lines: no Bearer key can equal them, a header value never holds a newline.
        text = "".join(f"{name}: {value}\n" for name, value in credentials)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def validate_namespace(namespace: str | None) -> str | None:
    """Check a caller-chosen namespace.

    Raises:
        InvalidRequestError: empty, longer than 64 characters, or other than letters, digits, `_`, `.`, `-`.
    """
    if namespace is None:
        return None
    if not _NAMESPACE.match(namespace):
        raise InvalidRequestError(
            "X-LLMProxy-Namespace must be 1-64 characters of letters, digits, '_', '.' or '-'.",
            param="X-LLMProxy-Namespace",
        )
    return namespace


def scope_id(tenant: str, namespace: str | None) -> str:
    """`<tenant>` or `<tenant>/<namespace>`: the partition every cache entry belongs to."""
    return f"{tenant}/{namespace}" if namespace else tenant
