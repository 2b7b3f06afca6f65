"""The catalog: one small HASH per cached answer, indexed so the admin API can list, search and invalidate.

L1 entries are plain strings (one GET on the hot path) and L2 documents exist only for prompts that can be
embedded, so neither can be listed or filtered well. Every answer therefore also gets a catalog document at
`{prefix}:cat:{request_hash}` (the hash includes the scope, so it is unique), written in the same MULTI as the
answer and expiring with it. The index needs no embedding model: it works with the semantic layer off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT
from redisvl.index import AsyncSearchIndex
from redisvl.query import CountQuery, FilterQuery
from redisvl.query.filter import FilterExpression
from redisvl.schema import IndexSchema

from llmproxy.cache.catalog.query import NO_NAMESPACE
from llmproxy.cache.keys import key_part
from llmproxy.cache.tags import tag_field, tag_value
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import WireProtocol
from llmproxy.protocols.registry import ProtocolName
from llmproxy.store.errors import CacheUnavailableError, redis_call
from llmproxy.store.hash_tags import without_tag
from llmproxy.store.search_index import create_or_compare, index_missing
from llmproxy.store.search_results import as_text, result_rows, result_total

logger = logging.getLogger(__name__)

DISPLAY_CHARS = 2_000  # longer prompts are cut: enough to recognise and search, small in Redis
_TAG_FIELDS = ("scope", "tenant", "namespace", "model", "kind", "entry_key", "origin")
_RETURN_FIELDS = [*_TAG_FIELDS, "prompt", "created_at"]
NOT_SEARCHABLE = (
    "The catalog is off: this Redis Cluster cannot search across its shards and no redis.search_url is set "
    "(flush still works)."
)


class CatalogIndexError(Exception):
    """The catalog index exists with another schema (startup); the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class CatalogRecord:
    """What the catalog records about one cached answer when it is written."""

    scope: str
    model: str
    kind: str
    prompt: str  # for display and text search (the protocol's display_prompt)
    entry_key: str  # the L1 key of the answer
    origin: str  # the L1 key of the answer this one copies (an L2 hit promoted into L1); else entry_key


def catalog_record(
    protocol: WireProtocol, body: JsonObject, scope: str, model: str, entry_key: str, origin: str | None = None
) -> CatalogRecord:
    """The record of a request's answer stored under entry_key (a copy of `origin`'s answer, when given)."""
    prompt = protocol.display_prompt(body, DISPLAY_CHARS)
    return CatalogRecord(scope, model, protocol.name, prompt, entry_key, origin or entry_key)


class CatalogItem(BaseModel):
    """One catalog document as read back (validated: what is in Redis is outside our control)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    scope: str
    tenant: str
    namespace: str
    model: str
    kind: ProtocolName
    prompt: str
    created_at: float
    entry_key: str
    origin: str

    @property
    def id(self) -> str:
        """The entry's id in the admin API: its request hash, the last part of its L1 key."""
        return entry_id(self.entry_key)

    @property
    def namespace_name(self) -> str | None:
        """The namespace, or None for a scope without one."""
        return None if self.namespace == NO_NAMESPACE else self.namespace


@dataclass(frozen=True, slots=True)
class CatalogPage:
    """One page of a search: the number of all matches, and the items on this page."""

    total: int
    items: list[CatalogItem]


def entry_id(entry_key: str) -> str:
    """The request hash that ends an L1 key (`{prefix}:l1:{scope}:{hash}`, the hash tagged on a cluster; scopes
    hold no colon)."""
    return without_tag(entry_key.rpartition(":")[2])


class Catalog:
    """The catalog index: staging documents with their answers, and filtered, sorted searches over them."""

    def __init__(self, redis: Redis, key_prefix: str, hash_tags: bool = False, searchable: bool = True) -> None:
        self._redis = redis
        self._hash_tags = hash_tags  # a cluster: in the answer's slot (cache/keys.py)
        # False: no Redis here searches every shard (a cluster without search_url): nothing is listed, and a
        # query says why rather than answer from one shard.
        self._searchable = searchable
        self._schema = build_schema(key_prefix)
        # The client belongs to the caller (the lifespan closes it): the index must never close it.
        self._index = AsyncSearchIndex(self._schema, redis_client=redis, owns_client=False)
        self._ready = False  # set by ensure(); cleared when a query finds the index gone

    @property
    def name(self) -> str:
        """The RediSearch index name."""
        return str(self._schema.index.name)

    def key(self, entry_id: str) -> str:
        """The catalog document key of an entry id."""
        return f"{self._schema.index.prefix}{key_part(entry_id, self._hash_tags)}"

    async def ensure(self) -> None:
        """Create the index unless it exists (losing a creation race to another replica is fine), then check it.

        Raises:
            CatalogIndexError: the index exists with another schema.
            CacheUnavailableError: Redis failed or timed out.
        """
        if not self._searchable:
            return
        differences = await create_or_compare(self._index, self._redis, "catalog")
        if differences:
            raise CatalogIndexError(
                f"The catalog index {self.name!r} already exists with another schema: {'; '.join(differences)}. "
                f"Drop it (FT.DROPINDEX {self.name}; its documents stay and are indexed again) and restart."
            )
        self._ready = True

    def stage(self, pipe: Pipeline, record: CatalogRecord, created_at: float, ttl_ms: int) -> None:
        """Queue the document's HSET and PEXPIRE on pipe, inside the caller's MULTI that writes the answer."""
        key = self.key(entry_id(record.entry_key))
        pipe.hset(key, mapping=_document(record, created_at))
        pipe.pexpire(key, ttl_ms)

    async def search(self, where: FilterExpression, limit: int, offset: int = 0) -> CatalogPage:
        """Matching items, newest first, and how many match in all.

        Raises:
            CacheUnavailableError: Redis failed, timed out, or the index cannot be created.
        """
        query = FilterQuery(where, return_fields=_RETURN_FIELDS, num_results=limit, sort_by=("created_at", "DESC"))
        query.paging(offset, limit)
        raw = await self._search(query)
        items = [item for item in map(_item, result_rows(raw)) if item is not None]
        return CatalogPage(result_total(raw), items)

    async def count(self, where: FilterExpression) -> int:
        """How many items match.

        Raises:
            CacheUnavailableError: Redis failed, timed out, or the index cannot be created.
        """
        return result_total(await self._search(CountQuery(where)))

    async def size(self) -> int:
        """How many cached answers the catalog lists.

        Raises:
            CacheUnavailableError: Redis failed, timed out, or the index cannot be created.
        """
        return await self.count(FilterExpression("*"))

    async def get(self, entry_id: str) -> CatalogItem | None:
        """The item of one entry id, or None.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        if not self._searchable:
            raise CacheUnavailableError(NOT_SEARCHABLE)
        with redis_call("catalog read"):
            fields = await self._redis.hgetall(self.key(entry_id))
        return _item({as_text(name): value for name, value in fields.items()}) if fields else None

    async def _search(self, query: FilterQuery | CountQuery) -> object:
        if not self._searchable:
            raise CacheUnavailableError(NOT_SEARCHABLE)
        if not self._ready:
            await self._recreate()
        try:
            with redis_call("catalog query"):
                return await self._index.search(query.query, query_params=query.params)
        except CacheUnavailableError as exc:
            self._ready = not index_missing(exc)
            raise

    async def _recreate(self) -> None:
        """Create the index that Redis lacked at startup or lost since (documents still there are indexed again).

        Raises:
            CacheUnavailableError: Redis failed, or an index of another schema took the name (logged).
        """
        try:
            await self.ensure()
        except CatalogIndexError as exc:
            logger.error("catalog index unusable: %s", exc)
            raise CacheUnavailableError(str(exc)) from exc


def build_schema(key_prefix: str) -> IndexSchema:
    """The index definition: readable tags, the prompt as text (no stopwords: every word is searchable), time."""
    index = {"name": f"{key_prefix}:catalog", "prefix": f"{key_prefix}:cat:", "storage_type": "hash", "stopwords": []}
    fields: list[dict[str, object]] = [tag_field(name) for name in _TAG_FIELDS]
    fields += [
        {"name": "prompt", "type": "text"},
        {"name": "created_at", "type": "numeric", "attrs": {"sortable": True}},
    ]
    return IndexSchema.from_dict({"index": index, "fields": fields})


def _document(record: CatalogRecord, created_at: float) -> dict[FieldT, EncodableT]:
    tenant, _, namespace = record.scope.partition("/")
    tags = {
        "scope": record.scope,
        "tenant": tenant,
        "namespace": namespace or NO_NAMESPACE,
        "model": record.model,
        "kind": record.kind,
        "entry_key": record.entry_key,
        "origin": record.origin,
    }
    document: dict[FieldT, EncodableT] = {name: tag_value(value) for name, value in tags.items()}
    # RediSearch returns numbers with 12 significant digits: at 10 ms precision, a search and HGETALL agree.
    document.update({"prompt": record.prompt, "created_at": round(created_at, 2)})
    return document


def _item(fields: dict[str, object]) -> CatalogItem | None:
    """The item, or None when its fields are gone or unreadable (it expired while the query ran)."""
    try:
        return CatalogItem.model_validate({name: as_text(value) for name, value in fields.items()})
    except ValidationError:
        return None
