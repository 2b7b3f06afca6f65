"""Pure helpers of the admin API: durations, search escaping, filters, settings redaction."""

from __future__ import annotations

from typing import Any

import pytest

from llmproxy.api.admin.redaction import REDACTED, redact_url, redacted_settings
from llmproxy.cache.catalog.query import EntryFilter, any_of, filter_expression, search_terms
from llmproxy.settings import load_settings
from llmproxy.telemetry.duration import parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("3600", 3600.0), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("7d", 604_800.0),
     ("1w", 604_800.0), (" 2H ", 7200.0), ("0.5h", 1800.0), (0, 0.0)],
)  # fmt: skip
def test_durations_in_seconds_or_with_a_unit(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "h", "2 hours", "-5", "5y", "1h30m", -1, float("inf"), float("nan"), True])
def test_anything_else_is_not_a_duration(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("reverse a list", ["reverse", "a", "list"]),
        ('reverse) @scope:{x} "list*|~-', ["reverse", "scope", "x", "list"]),
        ("C++ (std::vector)", ["C", "std", "vector"]),
        ("naïve café_au_lait", ["naïve", "café_au_lait"]),
        ("?!* -|~ ()", []),
    ],
)
def test_search_terms_keep_only_words(text: str, terms: list[str]) -> None:
    assert search_terms(text) == terms


def test_filter_expression_escapes_every_value_and_combines_with_and() -> None:
    entry_filter = EntryFilter(
        scope="abc/team-a.prod", model="gpt,4o} | @x", kind="chat", created_before=100.5, text="list) @y"
    )
    assert str(filter_expression(entry_filter)) == (
        r"((((@scope:{abc\/team\-a\.prod} @model:{gpt\,4o\}\ \|\ \@x}) @kind:{chat}) @created_at:[-inf (100.5])"
        " @prompt:(list y))"
    )
    assert str(filter_expression(EntryFilter())) == "*"
    assert str(any_of("origin", ["p:l1:a:1", "p:l1:b:2"])) == r"@origin:{p\:l1\:a\:1|p\:l1\:b\:2}"


def test_blank_values_never_widen_a_filter() -> None:
    # redisvl renders `Tag == ""` as match-all; blank values become a digest that matches nothing real.
    assert str(filter_expression(EntryFilter(model=" "))).startswith("@model:{\\~")


@pytest.mark.parametrize(
    ("entry_filter", "mode"),
    [
        (EntryFilter(), "all"),
        (EntryFilter(namespace="team"), "namespace"),
        (EntryFilter(created_before=1.0), "older_than"),
        (EntryFilter(tenant="t", model="m"), "combined"),
    ],
)
def test_filter_mode_names_the_one_condition(entry_filter: EntryFilter, mode: str) -> None:
    assert entry_filter.mode() == mode
    assert entry_filter.is_empty() == (mode == "all")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", f"redis://:{REDACTED}@host:6379/0"),
        ("redis://user:pw@host", f"redis://user:{REDACTED}@host"),
        ("rediss://host:6380?password=pw&db=1", f"rediss://host:6380?password={REDACTED}&db=1"),
        ("unix:///run/redis.sock?password=pw", f"unix:///run/redis.sock?password={REDACTED}"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("not a url", "not a url"),
    ],
)
def test_urls_lose_their_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redacted_settings_hold_no_secret() -> None:
    settings = load_settings(
        None,
        {
            "redis": {"url": "redis://default:redis-pw@cache:6379/0"},
            "upstream": {"api_key": "sk-upstream"},
            "upstreams": {"cheap": {"base_url": "https://u:url-pw@cheap.example/v1", "api_key": "sk-cheap"}},
            "admin": {"token": "admin-token-0123456789"},
        },
    )
    shown = str(redacted_settings(settings))
    for secret in ("redis-pw", "sk-upstream", "url-pw", "sk-cheap", "admin-token-0123456789"):
        assert secret not in shown
    assert redacted_settings(settings)["upstreams"]["cheap"]["base_url"] == f"https://u:{REDACTED}@cheap.example/v1"
