"""Invalidation: deleting cached answers from L1, L2 and the catalog together, by filter, prompt, id, or all.

A filter invalidation repeats "search a page, delete it" until nothing matches: paging with offsets while
deleting would skip entries. An answer's keys go in one MULTI (a few answers each), so an answer never outlives
its L2 document or its catalog document, nor the other way round. Then the sweep (cache/sweep.py) takes the
matching answers the catalog no longer lists, because Redis evicted their catalog documents. A dry run deletes
nothing and counts the answers the real run would delete.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from redis.asyncio import Redis
from redisvl.query.filter import FilterExpression, Tag

from llmproxy.cache.catalog.answer_keys import AnswerKeys
from llmproxy.cache.catalog.index import Catalog, CatalogItem
from llmproxy.cache.catalog.query import EntryFilter, any_of, filter_expression
from llmproxy.cache.catalog.sweep import Sweep, Target
from llmproxy.cache.exact import scope_of
from llmproxy.cache.semantic import SemanticIndex
from llmproxy.cache.tags import tag_value
from llmproxy.store.errors import CacheUnavailableError, redis_call

logger = logging.getLogger(__name__)

PAGE = 500  # catalog items and L2 neighbours read per query (deleted in smaller MULTIs: answer_keys.py)
KEYS_PER_QUERY = 100  # entry keys per tag-list clause: keeps each query string a few KB
FLUSHED_FAMILIES = ("l1", "l2", "cat")  # answers, their L2 documents, their catalog documents; nothing else
SEARCH_FAMILIES = frozenset({"l2", "cat"})  # on the search node, when there is one of its own

Embed = Callable[[str], Awaitable[NDArray[np.float32] | None]]
DeletionCounter = Callable[[str, int], None]  # (mode, entries deleted): feeds the invalidation metric


class InvalidationRejected(Exception):
    """The invalidation cannot run as asked (an admin error, 400); the message says why."""


@dataclass(frozen=True, slots=True)
class Invalidation:
    """How many entries matched, and how many were deleted (0 on a dry run)."""

    matched: int
    deleted: int


class Invalidator:
    """Deletes cached answers everywhere they live; every method can instead count (dry run)."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        catalog: Catalog,
        index: SemanticIndex | None,
        embed: Embed | None,
        on_deleted: DeletionCounter | None = None,
        search: Redis | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._catalog = catalog
        self._index = index
        self._embed = embed
        self._on_deleted = on_deleted
        self._keys = AnswerKeys(redis, key_prefix, catalog.key, search=search)
        self._sweep = Sweep(redis, key_prefix, self._keys)

    async def by_filter(self, entry_filter: EntryFilter, dry_run: bool) -> Invalidation:
        """Delete the entries matching the filter.

        Raises:
            CacheUnavailableError: Redis failed or timed out (entries deleted before that stay deleted).
        """
        return await self._run([filter_expression(entry_filter)], Target(entry_filter), entry_filter.mode(), dry_run)

    async def by_prompt(self, prompt: str, distance: float, entry_filter: EntryFilter, dry_run: bool) -> Invalidation:
        """Delete the answers to prompts within `distance` of prompt (and the filter), with their promoted copies.

        Raises:
            InvalidationRejected: the semantic layer is off, or the prompt cannot be embedded.
            CacheUnavailableError: Redis or the embedding model failed.
        """
        originals = await self._similar(prompt, distance, entry_filter)
        base = filter_expression(entry_filter)
        # Copies promoted from an L2 hit share the answer of their origin, so they go with it.
        groups = [base & (any_of("entry_key", keys) | any_of("origin", keys)) for keys in _chunks(originals)]
        return await self._run(groups, Target(entry_filter, frozenset(originals)), "prompt", dry_run)

    async def delete_entry(self, wanted: str) -> Invalidation | None:
        """Delete one entry and the copies promoted from it; None when there is no such entry.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        item = await self._catalog.get(wanted)
        # Without its catalog document (evicted), the entry is found by its L1 key or L2 record.
        entry_key = item.entry_key if item is not None else await self._sweep.entry_key(wanted)
        if entry_key is None:
            return None
        scope = scope_of(self._prefix, entry_key)
        groups = [any_of("entry_key", [entry_key]) | any_of("origin", [entry_key])]
        return await self._run(groups, Target(EntryFilter(scope=scope), frozenset({entry_key})), "entry", False)

    async def flush(self, dry_run: bool) -> Invalidation:
        """Delete every answer, L2 document and catalog document under the key prefix (not history or audit).

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("flush"):
            if dry_run:
                return Invalidation(await self._count_keys("l1"), 0)
            unlinked = {family: await self._unlink_family(family) for family in FLUSHED_FAMILIES}
        self._count("flush", unlinked["l1"])
        return Invalidation(unlinked["l1"], unlinked["l1"])  # answers: L1 keys

    async def _run(self, groups: Sequence[FilterExpression], target: Target, mode: str, dry_run: bool) -> Invalidation:
        """The catalog's matches (`groups`), then the sweep's: the target's answers the catalog does not list."""
        matched = sum([await self._catalog.count(where) for where in groups])
        if dry_run:
            return Invalidation(matched + await self._sweep.run(target, dry_run=True), 0)
        drained = sum([await self._drain(where) for where in groups])
        swept = await self._sweep.run(target, dry_run=False)
        self._count(mode, drained + swept)
        # Entries written meanwhile may match too, so more can be deleted than were counted.
        return Invalidation(max(matched, drained) + swept, drained + swept)

    async def _drain(self, where: FilterExpression) -> int:
        deleted, previous = 0, frozenset[str]()
        while True:
            page = await self._catalog.search(where, PAGE)
            ids = frozenset(item.id for item in page.items)
            if not ids or ids == previous:  # nothing left, or only documents that expired as we went
                return deleted
            deleted += await self._delete(page.items)
            previous = ids

    async def _delete(self, items: Sequence[CatalogItem]) -> int:
        """Unlink the entries' L1 keys, L2 documents and catalog documents together; catalog documents gone."""
        with redis_call("invalidation"):
            return (await self._keys.unlink([item.entry_key for item in items])).catalog

    async def _similar(self, prompt: str, distance: float, entry_filter: EntryFilter) -> list[str]:
        if self._index is None or self._embed is None:
            raise InvalidationRejected("Invalidation by prompt needs the semantic cache (semantic.enabled: true).")
        try:
            vector = await self._embed(prompt)
        except Exception as exc:  # the model failing is an outage of the semantic layer, not a bad request
            logger.exception("embedding failed during an invalidation by prompt")
            raise CacheUnavailableError("the embedding model failed") from exc
        if vector is None:
            raise InvalidationRejected("The prompt is longer than the embedding model's window; it cannot be compared.")
        where = _l2_prefilter(entry_filter)
        keys: list[str] = []
        offset = 0  # paging by offset is safe here: nothing is deleted until every match is known
        while hits := await self._index.within(vector, distance, where, PAGE, offset):
            keys += [hit.entry_key for hit in hits]
            offset += PAGE
        return keys

    async def _count_keys(self, family: str) -> int:
        return sum([1 async for _ in self._redis.scan_iter(match=f"{self._prefix}:{family}:*", count=1000)])

    async def _unlink_family(self, family: str) -> int:
        # A cluster client's SCAN walks every primary in turn, and its UNLINK splits the keys by slot.
        on_search = family in SEARCH_FAMILIES
        redis = self._keys.search if on_search else self._redis
        unlinked, batch = 0, []
        async for key in redis.scan_iter(match=f"{self._prefix}:{family}:*", count=1000):
            batch.append(key)
            if len(batch) >= PAGE:
                unlinked += await self._keys.unlink_keys(batch, on_search)
                batch = []
        return unlinked + (await self._keys.unlink_keys(batch, on_search) if batch else 0)

    def _count(self, mode: str, deleted: int) -> None:
        if self._on_deleted is not None and deleted:
            self._on_deleted(mode, deleted)


def _l2_prefilter(entry_filter: EntryFilter) -> FilterExpression | None:
    """The part of the filter the L2 index can apply itself (it has scope and model tags); the catalog does the rest."""
    where = FilterExpression("*")
    if entry_filter.scope is not None:
        where = where & (Tag("scope") == tag_value(entry_filter.scope))
    if entry_filter.model is not None:
        where = where & (Tag("model") == tag_value(entry_filter.model))
    return None if str(where) == "*" else where


def _chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), KEYS_PER_QUERY):
        yield unique[start : start + KEYS_PER_QUERY]
