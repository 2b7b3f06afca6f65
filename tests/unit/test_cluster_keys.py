"""Key names on a cluster (hash-tagged, one slot per answer) and on a standalone Redis (unchanged)."""

from __future__ import annotations

from redis.crc import key_slot

from llmproxy.cache.catalog.index import entry_id
from llmproxy.cache.keys import key_part
from llmproxy.cache.semantic import document_key
from llmproxy.settings import TimeSeriesSettings
from llmproxy.telemetry.series import SeriesId, resolutions

HASH = "ab" * 32
PREFIX = "llmproxy"


def l1_key(hash_tags: bool) -> str:
    return f"{PREFIX}:l1:tenant-1:{key_part(HASH, hash_tags)}"


def test_standalone_keys_are_byte_for_byte_what_they_were() -> None:
    assert l1_key(False) == f"llmproxy:l1:tenant-1:{HASH}"
    assert document_key(PREFIX, l1_key(False)) == f"llmproxy:l2:tenant-1:{HASH}"
    levels = resolutions(TimeSeriesSettings())
    series = SeriesId("result", "hit_l1", "requests")
    assert [series.key(PREFIX, level) for level in levels] == [
        "llmproxy:ts:result:hit_l1:requests",
        "llmproxy:ts:result:hit_l1:requests:1m",
        "llmproxy:ts:result:hit_l1:requests:1h",
    ]


def test_an_answers_keys_share_one_slot_on_a_cluster() -> None:
    entry = l1_key(True)
    lease = f"{PREFIX}:lease:" + entry.removeprefix(f"{PREFIX}:l1:")
    catalog = f"{PREFIX}:cat:{key_part(entry_id(entry), True)}"
    keys = [entry, document_key(PREFIX, entry), catalog, lease]
    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert key_slot(entry.encode()) == key_slot(HASH.encode())  # the tag is the request hash
    assert entry_id(entry) == HASH  # the admin API's id has no braces


def test_answers_spread_over_slots_on_a_cluster() -> None:
    slots = {key_slot(f"{PREFIX}:l1:t:{key_part(f'{n:064x}', True)}".encode()) for n in range(100)}
    assert len(slots) > 90


def test_history_series_and_their_compactions_share_one_slot_on_a_cluster() -> None:
    levels = resolutions(TimeSeriesSettings())
    keys = [
        SeriesId(group, name, metric).key(PREFIX, level, hash_tags=True)
        for group, name, metric in [("result", "hit_l1", "requests"), ("model", "gpt-4o", "tokens_saved")]
        for level in levels
    ]
    assert keys[0] == "{llmproxy:ts}:result:hit_l1:requests"
    assert len({key_slot(key.encode()) for key in keys}) == 1
