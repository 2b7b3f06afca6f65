"""Tenant scope of a cache entry: a hash of the caller's API key, plus an optional namespace.

The API key itself never leaves this module: only its SHA-256 digest is used as a scope.
"""

from __future__ import annotations

import hashlib
import re

from llmproxy.errors import InvalidRequestError

SHARED_TENANT = "shared"
ANONYMOUS_TENANT = "anonymous"
NAMESPACE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
TENANT_PATTERN = rf"[0-9a-f]{{32}}|{ANONYMOUS_TENANT}|{SHARED_TENANT}"  # what tenant_id returns
_NAMESPACE = re.compile(rf"^{NAMESPACE_PATTERN}$")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def tenant_id(api_key: str | None, shared: bool) -> str:
    """The tenant part of a scope: a digest of the key, so keys are never stored."""
    if shared:
        return SHARED_TENANT
    if api_key is None:
        return ANONYMOUS_TENANT
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


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


def scope_id(api_key: str | None, namespace: str | None, shared: bool) -> str:
    """`<tenant>` or `<tenant>/<namespace>`: the partition every cache entry belongs to."""
    tenant = tenant_id(api_key, shared)
    return f"{tenant}/{namespace}" if namespace else tenant
