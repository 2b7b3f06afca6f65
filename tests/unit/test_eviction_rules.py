"""The pure rules behind invalidation without the catalog, and the eviction policies the proxy supports."""

from __future__ import annotations

import pytest

from llmproxy.cache.catalog.query import EntryFacts, EntryFilter, matches
from llmproxy.cache.entry import HEADER_BYTES, CacheEntry, decode_header, encode_entry
from llmproxy.store.eviction import UNKNOWN, policy_warning

ANSWER = {"id": "x", "object": "chat.completion", "choices": [{"message": {"content": '"response": tricky'}}]}
TENANT = "0123456789abcdef0123456789abcdef"


def entry(model: str = "gpt-4o", origin: str | None = None) -> CacheEntry:
    return CacheEntry(kind="chat", model=model, created_at=1_700_000_000.123456, origin=origin, response=ANSWER)


def test_the_header_is_read_from_the_first_bytes_of_a_stored_entry() -> None:
    raw = encode_entry(entry(origin="p:l1:s:abc"))
    header = decode_header(raw[:HEADER_BYTES])
    assert header is not None
    assert (header.kind, header.model, header.created_at, header.origin) == (
        "chat",
        "gpt-4o",
        1_700_000_000.123456,
        "p:l1:s:abc",
    )


def test_a_model_name_holding_the_response_field_does_not_end_the_header() -> None:
    header = decode_header(encode_entry(entry(model='m,"response":{}')))
    assert header is not None and header.model == 'm,"response":{}'


def test_a_header_cut_short_or_unreadable_is_none() -> None:
    assert decode_header(encode_entry(entry(model="m" * 2_000))[:HEADER_BYTES]) is None
    assert decode_header(b'{"version":1,"kind":"nope","model":"m","created_at":1,"response":{}}') is None
    assert decode_header(b"") is None


def test_an_entry_written_before_origin_was_stored_has_none() -> None:
    raw = b'{"version":1,"kind":"embedding","model":"e","created_at":5.0,"response":{"data":[]}}'
    header = decode_header(raw)
    assert header is not None and (header.kind, header.origin) == ("embedding", None)


FACTS = EntryFacts(f"{TENANT}/team", "gpt-4o", "chat", 1_000.004)


@pytest.mark.parametrize(
    ("entry_filter", "expected"),
    [
        (EntryFilter(scope=f"{TENANT}/team"), True),
        (EntryFilter(scope=TENANT), False),
        (EntryFilter(tenant=TENANT, namespace="team"), True),
        (EntryFilter(namespace="other"), False),
        (EntryFilter(model="gpt-4o", kind="chat"), True),
        (EntryFilter(kind="embedding"), False),
        (EntryFilter(created_before=1_000.01), True),
        # The catalog keeps 1000.00 (10 ms precision): a cut at 1000.003 takes it there, so here too.
        (EntryFilter(created_before=1_000.003), True),
        (EntryFilter(created_before=999.999), False),
    ],
)
def test_a_filter_matches_facts_as_the_catalog_would(entry_filter: EntryFilter, expected: bool) -> None:
    assert matches(entry_filter, FACTS) is expected


def test_an_unknown_fact_fails_its_condition_only() -> None:
    unreadable = EntryFacts(TENANT, None, None, None)
    assert matches(EntryFilter(tenant=TENANT), unreadable)
    assert not matches(EntryFilter(model="gpt-4o"), unreadable)
    assert not matches(EntryFilter(kind="chat"), unreadable)
    assert not matches(EntryFilter(created_before=2e9), unreadable)


def test_a_scope_without_namespace_matches_no_namespace_filter() -> None:
    assert not matches(EntryFilter(namespace="team"), EntryFacts(TENANT, "m", "chat", 1.0))


def test_a_text_filter_cannot_be_evaluated_without_the_catalog() -> None:
    with pytest.raises(ValueError):
        matches(EntryFilter(text="hello"), FACTS)


@pytest.mark.parametrize("policy", ["noeviction", "volatile-lru", "volatile-lfu", "volatile-ttl", "volatile-random"])
def test_policies_that_evict_only_keys_with_a_ttl_are_supported(policy: str) -> None:
    assert policy_warning(policy) is None


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_allkeys_policies_are_warned_about(policy: str) -> None:
    warning = policy_warning(policy)
    assert warning is not None and policy in warning and "audit log" in warning


def test_an_unknown_policy_is_not_warned_about_and_a_strange_one_is() -> None:
    assert policy_warning(UNKNOWN) is None
    assert "not one this proxy knows" in (policy_warning("sometimes-lru") or "")
