"""The effective settings as JSON for the admin API, with every secret replaced (pure).

Secrets are the `SecretStr` fields (API keys, the admin token) and credentials inside URLs, such as the
password in `redis://:pw@host` or `redis://host?password=pw`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from llmproxy.settings import Settings

REDACTED = "**********"
_SECRET_QUERY_PARAMS = frozenset({"password", "pass", "pwd", "secret", "token", "api_key", "apikey", "key"})


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """Settings as JSON-ready data; pydantic already masks SecretStr, URLs are cleaned here."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    cleaned: dict[str, Any] = _clean(data)
    return cleaned


def redact_url(value: str) -> str:
    """The URL without its password or secret query parameters; other strings are returned unchanged."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:  # not a URL after all (e.g. an unbalanced '[')
        return value
    if not parts.scheme:
        return value
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{REDACTED}@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if password is None and not any(name.lower() in _SECRET_QUERY_PARAMS for name, _ in pairs):
        return value
    query = urlencode(
        [(name, REDACTED if name.lower() in _SECRET_QUERY_PARAMS else item) for name, item in pairs], safe="*"
    )
    # Rebuilt by hand: urlunsplit drops the empty authority of unix:///path URLs.
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    return rebuilt + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value
