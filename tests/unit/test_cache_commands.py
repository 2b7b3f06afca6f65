"""Formatting of `llmproxy cache` output (pure)."""

from __future__ import annotations

from llmproxy.commands.cache_cli import table


def test_table_pads_columns_to_the_widest_cell() -> None:
    rendered = table(["id", "model"], [["a1", "gpt-4o-mini"], ["b22", "x"]])
    assert rendered.splitlines() == ["id   model", "a1   gpt-4o-mini", "b22  x"]


def test_table_without_rows_is_its_header() -> None:
    assert table(["id", "prompt"], []) == "id  prompt"
