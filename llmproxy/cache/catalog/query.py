"""Catalog filters: which cached answers an admin request means, as one RediSearch filter expression.

The same filter is also evaluated in Python (`matches`) over what an answer's L1 entry or L2 record says about it,
for answers whose catalog document was evicted; both evaluations must agree.

User input reaches the query only as tag values (escaped by redisvl), a number, or search words that
`search_terms` reduced to letters, digits and `_` and escaped again, so no input can change the query's shape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields

from redisvl.query.filter import FilterExpression, Num, Tag
from redisvl.utils.token_escaper import TokenEscaper

from llmproxy.cache.tags import tag_value
from llmproxy.protocols.registry import ProtocolName

NO_NAMESPACE = "-"  # the namespace tag of scopes without one: RediSearch cannot match an empty tag
MAX_SEARCH_TERMS = 32
_WORD = re.compile(r"\w+")
_ESCAPER = TokenEscaper()


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Conditions on cached answers, combined with AND; unset ones match everything."""

    scope: str | None = None
    tenant: str | None = None
    namespace: str | None = None
    model: str | None = None
    kind: ProtocolName | None = None
    created_before: float | None = None  # epoch seconds: older_than, resolved against the clock
    text: str | None = None  # words that must all appear in the prompt

    def is_empty(self) -> bool:
        """True when the filter would match every entry."""
        return all(getattr(self, item.name) is None for item in fields(self))

    def mode(self) -> str:
        """A short name for the metrics label: the one condition used, or "combined" (a bounded set)."""
        used = [item.name for item in fields(self) if getattr(self, item.name) is not None]
        if len(used) != 1:
            return "combined" if used else "all"
        return "older_than" if used[0] == "created_before" else used[0]


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """What an answer's L1 key and value, or its L2 record, tell about it; None is a fact that could not be read."""

    scope: str
    model: str | None
    kind: str | None
    created_at: float | None


def matches(entry_filter: EntryFilter, facts: EntryFacts) -> bool:
    """Whether the filter holds for the facts, as the catalog index would decide; an unknown fact fails its condition.

    Raises:
        ValueError: the filter searches prompt words, which only the catalog holds.
    """
    if entry_filter.text is not None:
        raise ValueError("a text search needs the catalog: prompts are not stored in L1 values")
    tenant, _, namespace = facts.scope.partition("/")
    conditions = [
        (entry_filter.scope, facts.scope),
        (entry_filter.tenant, tenant),
        (entry_filter.namespace, namespace or None),
        (entry_filter.model, facts.model),
        (entry_filter.kind, facts.kind),
    ]
    if any(wanted is not None and wanted != value for wanted, value in conditions):
        return False
    if entry_filter.created_before is None:
        return True
    # The catalog stores the creation time rounded to 10 ms (see catalog._document): compare the same number.
    return facts.created_at is not None and round(facts.created_at, 2) < entry_filter.created_before


def filter_expression(entry_filter: EntryFilter) -> FilterExpression:
    """The filter as a RediSearch expression over the catalog's fields ("*" when it is empty)."""
    expression = FilterExpression("*")
    tags = {
        "scope": entry_filter.scope,
        "tenant": entry_filter.tenant,
        "namespace": entry_filter.namespace,
        "model": entry_filter.model,
        "kind": entry_filter.kind,
    }
    for name, value in tags.items():
        if value is not None:
            expression = expression & (Tag(name) == tag_value(value))
    if entry_filter.created_before is not None:
        expression = expression & (Num("created_at") < entry_filter.created_before)
    if entry_filter.text is not None:
        expression = expression & text_expression("prompt", entry_filter.text)
    return expression


def any_of(field: str, values: Sequence[str]) -> FilterExpression:
    """The tag field equals one of values (escaped); matches nothing for no values."""
    if not values:
        raise ValueError("any_of needs at least one value: an empty tag list would match everything")
    return Tag(field) == [tag_value(value) for value in values]


def text_expression(field: str, text: str) -> FilterExpression:
    """Every word of text must appear in the field (stemmed, case-insensitive).

    Raises:
        ValueError: the text holds no word to search for.
    """
    terms = search_terms(text)
    if not terms:
        raise ValueError("needs at least one word (letters or digits) to search for")
    return FilterExpression(f"@{field}:({' '.join(terms)})")


def search_terms(text: str) -> list[str]:
    """The words of free text, escaped for a RediSearch query; punctuation and query syntax are dropped.

    RediSearch splits indexed text on punctuation too, so dropping it loses no match: "C++ (std::vector)"
    searches for C, std and vector.
    """
    return [_ESCAPER.escape(word) for word in _WORD.findall(text)[:MAX_SEARCH_TERMS]]
