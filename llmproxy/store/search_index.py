"""What the RediSearch errors we expect around index creation and queries look like."""

from __future__ import annotations


def already_exists(exc: Exception) -> bool:
    """Another replica created the index between our existence check and our FT.CREATE."""
    return "index already exists" in str(exc.__cause__ or exc).lower()


def index_missing(exc: Exception) -> bool:
    """The index is gone (a Redis that restarted empty, or FT.DROPINDEX)."""
    return "no such index" in str(exc.__cause__ or exc).lower()
