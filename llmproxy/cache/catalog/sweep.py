"""The key sweep behind invalidation: answers found by their L1 keys and L2 records, not through the catalog.

Redis under maxmemory evicts keys one at a time, so an answer can lose its catalog document and keep its L1 entry or
L2 record. Invalidation therefore does not trust the catalog alone: it also walks the L1 keys, then the L2 records,
of the filter's scopes with SCAN MATCH (COUNT-bounded, so each call is short and never blocks Redis), reads what the
filters need in one pipelined round trip per batch (the scope from the key; kind, model, creation time and origin
from the first bytes of the L1 value; the same from the L2 record's fields) and deletes the matches with all their
keys (answer_keys.py). A SCAN walks the whole keyspace whatever the pattern: about one call per 1,000 keys.

Each answer is judged by the first of its records that is left: its catalog document, else its L1 entry, else its
L2 record. So the L1 sweep takes only entries without a catalog document and the L2 sweep only records with
neither: a dry run counts every answer once, and the real run deletes the same set.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

from llmproxy.cache.catalog.answer_keys import AnswerKeys
from llmproxy.cache.catalog.query import EntryFacts, EntryFilter, matches
from llmproxy.cache.entry import HEADER_BYTES, EntryHeader, decode_entry, decode_header, entry_header
from llmproxy.cache.exact import scope_of
from llmproxy.store.errors import redis_call
from llmproxy.store.redis_client import is_cluster
from llmproxy.store.search_results import as_text

SCAN_COUNT = 1000  # keys Redis examines per SCAN call: bounds the time of each call
BATCH = 500  # keys read per pipelined round trip (deleted in smaller MULTIs: answer_keys.py)
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_L2_FIELDS = ("model", "kind", "created_at")

# Each batch is read by one script call rather than a pipeline of 500-1,500 commands, whose cost was mostly the
# client's (about 5x the script's). Read-only, so Redis runs them even while it refuses writes (OOM).
_UNLISTED_HEADS = """#!lua flags=no-writes
local out = {}
for i = 1, #KEYS, 2 do
  if redis.call('exists', KEYS[i + 1]) == 0 then
    local head = redis.pcall('getrange', KEYS[i], 0, tonumber(ARGV[1]))
    if type(head) == 'string' and head ~= '' then
      out[#out + 1] = KEYS[i]
      out[#out + 1] = head
    end
  end
end
return out
"""  # KEYS: L1 key, catalog key, ... -> L1 key, first bytes of its value, ... for those without a catalog document
_ORPHAN_RECORDS = """#!lua flags=no-writes
local out = {}
for i = 1, #KEYS, 3 do
  if redis.call('exists', KEYS[i + 1], KEYS[i + 2]) == 0 then
    local fields = redis.pcall('hmget', KEYS[i], unpack(ARGV))
    local present = false  -- a record that vanished meanwhile has no field left
    if type(fields) == 'table' and not fields.err then
      for j = 1, #ARGV do present = present or fields[j] end
    end
    if present then
      out[#out + 1] = KEYS[i]
      for j = 1, #ARGV do out[#out + 1] = fields[j] end
    end
  end
end
return out
"""  # KEYS: L2 key, L1 key, catalog key, ... -> L2 key, model, kind, created_at, ... for those with neither


@dataclass(frozen=True, slots=True)
class Target:
    """The answers a sweep takes: those matching the filter and, when `keys` is set, being or copying one of them."""

    entry_filter: EntryFilter
    keys: frozenset[str] | None = None  # L1 keys


class Sweep:
    """Finds (and deletes) answers by their L1 keys and L2 records, for those the catalog no longer lists."""

    def __init__(self, redis: Redis, key_prefix: str, keys: AnswerKeys) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._keys = keys
        # Its scripts read an answer's L1, L2 and catalog keys together: one server, not a cluster (many slots per
        # script) nor keys split over a search node. There only the catalog finds answers (Redis Cluster's eviction
        # caveat: docs/deploy.md).
        self._together = keys.search is redis and not is_cluster(redis)
        self._unlisted_heads = redis.register_script(_UNLISTED_HEADS)
        self._orphan_records = redis.register_script(_ORPHAN_RECORDS)

    async def run(self, target: Target, dry_run: bool) -> int:
        """How many answers the catalog does not list match the target; deleted everywhere unless dry_run.

        Raises:
            CacheUnavailableError: Redis failed or timed out (answers deleted before that stay deleted).
        """
        if (target.keys is not None and not target.keys) or not self._together:
            return 0
        with redis_call("invalidation sweep"):
            return await self._sweep_l1(target, dry_run) + await self._sweep_l2(target, dry_run)

    async def entry_key(self, wanted: str) -> str | None:
        """The L1 key of an entry id, found by its L1 key or else its L2 record; None when neither is left.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("entry lookup"):
            for family in ("l1", "l2"):
                # `*id*`: the id ends the key, as a hash tag `{id}` on a cluster (an id is 64 hex digits).
                found = await self._first(f"{self._glob('*', family)}*{wanted}*")
                if found is not None:
                    return self._entry_key(found, family)
        return None

    async def _first(self, pattern: str) -> str | None:
        """The first key matching pattern; the walk stops there (on a cluster it walks each primary in turn)."""
        async for key in self._redis.scan_iter(match=pattern, count=SCAN_COUNT):
            return as_text(key)
        return None

    async def _sweep_l1(self, target: Target, dry_run: bool) -> int:
        total = 0
        async for keys in self._batches("l1", target.entry_filter):
            found = await self._l1_matches(keys, target)
            total += len(found) if dry_run else (await self._keys.unlink(found)).l1
        return total

    async def _sweep_l2(self, target: Target, dry_run: bool) -> int:
        total = 0
        async for keys in self._batches("l2", target.entry_filter):
            found = await self._l2_matches(keys, target)
            total += len(found) if dry_run else (await self._keys.unlink(found)).l2
        return total

    async def _l1_matches(self, keys: list[str], target: Target) -> list[str]:
        """The L1 keys of the batch that the target takes, among those without a catalog document."""
        pairs = [name for key in keys for name in (key, self._keys.catalog(key))]
        # Only the unlisted ones are read: without eviction that is none, and the batch costs 500 EXISTS.
        reply = await self._unlisted_heads(keys=pairs, args=[HEADER_BYTES - 1])
        headers = await self._headers({as_text(key): head for key, head in zip(reply[::2], reply[1::2], strict=True)})
        return [
            key
            for key, header in headers.items()
            if _takes(target, EntryFacts(scope_of(self._prefix, key), *_header_facts(header)), key, _origin(header))
        ]

    async def _headers(self, heads: dict[str, bytes]) -> dict[str, EntryHeader | None]:
        """The header of each entry from the start of its value (the whole value is read for a long header)."""
        headers = {key: decode_header(head) for key, head in heads.items()}
        long = [key for key, header in headers.items() if header is None and len(heads[key]) >= HEADER_BYTES]
        if long:  # a model name longer than about 900 bytes: rare, so these few are read whole
            for key, raw in zip(long, await self._redis.mget(long), strict=True):
                entry = None if raw is None else decode_entry(raw)
                headers[key] = None if entry is None else entry_header(entry)
        return headers

    async def _l2_matches(self, keys: list[str], target: Target) -> list[str]:
        """The L1 keys of the batch's L2 records that the target takes, among those with neither L1 nor catalog."""
        triples = []
        for key in keys:
            entry_key = self._entry_key(key, "l2")
            triples += [key, entry_key, self._keys.catalog(entry_key)]
        reply = await self._orphan_records(keys=triples, args=list(_L2_FIELDS))
        found, width = [], 1 + len(_L2_FIELDS)
        for start in range(0, len(reply), width):
            entry_key = self._entry_key(as_text(reply[start]), "l2")
            facts = EntryFacts(scope_of(self._prefix, entry_key), *_record_facts(reply[start + 1 : start + width]))
            if _takes(target, facts, entry_key):
                found.append(entry_key)
        return found

    async def _batches(self, family: str, entry_filter: EntryFilter) -> AsyncIterator[list[str]]:
        batch: list[str] = []
        async for key in self._redis.scan_iter(
            match=f"{self._glob(_scope_glob(entry_filter), family)}*", count=SCAN_COUNT
        ):
            batch.append(as_text(key))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _glob(self, scope_glob: str, family: str) -> str:
        """The pattern of a family's keys in the scopes scope_glob matches, up to the id (`{prefix}:l1:{scope}:`)."""
        return f"{_escape(self._prefix)}:{family}:{scope_glob}:"

    def _entry_key(self, key: str, family: str) -> str:
        """The L1 key of the answer a key of the family belongs to (L1 and L2 keys share scope and id)."""
        return f"{self._prefix}:l1:{key.removeprefix(f'{self._prefix}:{family}:')}"


def _takes(target: Target, facts: EntryFacts, entry_key: str, origin: str | None = None) -> bool:
    """The answer matches the filter and, with keys, is one of them or a copy of one."""
    if not matches(target.entry_filter, facts):
        return False
    return target.keys is None or entry_key in target.keys or (origin is not None and origin in target.keys)


def _origin(header: EntryHeader | None) -> str | None:
    return None if header is None else header.origin


def _header_facts(header: EntryHeader | None) -> tuple[str | None, str | None, float | None]:
    """(model, kind, created_at) of an L1 value; unknown for one that cannot be read (it is never served)."""
    return (None, None, None) if header is None else (header.model, header.kind, header.created_at)


def _record_facts(fields: list[object]) -> tuple[str | None, str | None, float | None]:
    """(model, kind, created_at) of an L2 record's fields; records written before kind was stored lack it."""
    model, kind, created_at = (None if value is None else as_text(value) for value in fields)
    try:
        created = None if created_at is None else float(created_at)
    except ValueError:
        created = None
    return model, kind, created


def _scope_glob(entry_filter: EntryFilter) -> str:
    """A SCAN MATCH glob for the scopes the filter can match (a narrowing only: every key is checked again)."""
    if entry_filter.scope is not None:
        return _escape(entry_filter.scope)
    if entry_filter.tenant is not None and entry_filter.namespace is not None:
        return _escape(f"{entry_filter.tenant}/{entry_filter.namespace}")
    if entry_filter.tenant is not None:
        return _escape(entry_filter.tenant) + "*"
    if entry_filter.namespace is not None:
        return "*/" + _escape(entry_filter.namespace)
    return "*"


def _escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)
