"""RediSearch indexes: creating one safely beside other replicas, and the errors expected around it and its queries."""

from __future__ import annotations

from redis.asyncio import Redis
from redisvl.index import AsyncSearchIndex
from redisvl.schema import IndexSchema

from llmproxy.store.errors import CacheUnavailableError, causes, redis_call

# FT.INFO does not report these, so they cannot be compared; EF_RUNTIME is sent with every query instead.
_UNREPORTED_VECTOR_ATTRS = frozenset({"ef_runtime", "epsilon"})


async def create_or_compare(index: AsyncSearchIndex, redis: Redis, what: str) -> list[str]:
    """Create the index unless it exists (losing the creation race to another replica is fine), then compare it.

    Returns the differences that matter between the index in Redis and `index`'s schema (empty: usable).

    Raises:
        CacheUnavailableError: Redis failed or timed out, or refused to create the index.
    """
    try:
        with redis_call(f"{what} index creation"):
            await index.create(overwrite=False)
    except CacheUnavailableError as exc:
        if not already_exists(exc):
            raise
    with redis_call(f"{what} index check"):
        existing = await AsyncSearchIndex.from_existing(index.name, redis_client=redis, owns_client=False)
    return schema_differences(existing.schema, index.schema)


def schema_differences(existing: IndexSchema, wanted: IndexSchema) -> list[str]:
    """Human-readable differences that matter between an existing index and the configured one."""
    have, want = _describe(existing), _describe(wanted)
    return [
        f"{item} is {have.get(item, 'absent')}, configured {want.get(item, 'absent')}"
        for item in sorted(have.keys() | want.keys())
        if have.get(item) != want.get(item)
    ]


def _describe(schema: IndexSchema) -> dict[str, str]:
    prefix = schema.index.prefix
    prefixes = prefix if isinstance(prefix, list) else [prefix]
    items = {"key prefix": ",".join(prefixes), "storage type": str(schema.index.storage_type.value)}
    for name, field in schema.fields.items():
        attrs = field.attrs.model_dump(mode="json", exclude=_UNREPORTED_VECTOR_ATTRS)
        items[f"field {name!r} type"] = str(field.type)
        items.update({f"field {name!r} {attr}": repr(value) for attr, value in attrs.items()})
    return items


def already_exists(exc: BaseException) -> bool:
    """Another replica created the index between our existence check and our FT.CREATE."""
    return _says(exc, "index already exists")


def index_missing(exc: BaseException) -> bool:
    """The index is gone (a Redis that restarted empty, or FT.DROPINDEX)."""
    return _says(exc, "no such index")


def _says(exc: BaseException, text: str) -> bool:
    return any(text in str(cause).lower() for cause in causes(exc))
