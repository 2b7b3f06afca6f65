"""What the RediSearch errors we expect around index creation and queries look like."""

from __future__ import annotations

from llmproxy.store.errors import causes


def already_exists(exc: BaseException) -> bool:
    """Another replica created the index between our existence check and our FT.CREATE."""
    return _says(exc, "index already exists")


def index_missing(exc: BaseException) -> bool:
    """The index is gone (a Redis that restarted empty, or FT.DROPINDEX)."""
    return _says(exc, "no such index")


def _says(exc: BaseException, text: str) -> bool:
    return any(text in str(cause).lower() for cause in causes(exc))
