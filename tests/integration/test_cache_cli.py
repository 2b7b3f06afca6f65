"""`llmproxy cache ...` as an operator runs it: a real process against a running proxy's admin API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from tests.support.clients import anthropic_sdk, openai_sdk
from tests.support.upstream import FakeUpstream

ADMIN_TOKEN = "cli-admin-token-0123456789"


@pytest.fixture
def proxy(start_proxy: Callable[..., AbstractContextManager[str]], key_prefix: str) -> Iterator[str]:
    # A key prefix of its own: this test flushes its cache.
    with start_proxy(admin={"token": ADMIN_TOKEN}, redis={"key_prefix": key_prefix}) as url:
        yield url


def cli(proxy: str, *args: str, token: str | None = ADMIN_TOKEN) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("LLMPROXY_")}
    env["LLMPROXY_URL"] = proxy
    if token is not None:
        env["LLMPROXY_ADMIN_TOKEN"] = token
    command = [sys.executable, "-m", "llmproxy", "cache", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def cli_json(proxy: str, *args: str) -> Any:
    done = cli(proxy, "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fill(proxy: str, api_key: str, fake: FakeUpstream, prompts_by_model: dict[str, list[str]]) -> None:
    with openai_sdk(proxy, api_key, fake) as sdk:
        for model, prompts in prompts_by_model.items():
            for prompt in prompts:
                sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])


def test_ls_show_invalidate_flush_and_audit(proxy: str, api_key: str, upstream: FakeUpstream) -> None:
    fill(
        proxy,
        api_key,
        upstream,
        {"model-a": ["What is the capital of France?", "Name a prime number."], "model-b": ["Hi!"]},
    )

    listed = cli_json(proxy, "ls")
    assert listed["total"] == 3
    table = cli(proxy, "ls", "--model", "model-a")
    assert table.returncode == 0, table.stderr
    assert "What is the capital of France?" in table.stdout and "Hi!" not in table.stdout
    assert "2 of 2 entries" in table.stdout

    entry_id = next(entry["id"] for entry in listed["entries"] if entry["model"] == "model-b")
    shown = cli(proxy, "show", entry_id)
    assert shown.returncode == 0 and '"choices"' in shown.stdout

    dry = cli(proxy, "invalidate", "--model", "model-a", "--dry-run")
    assert dry.stdout.strip() == "dry run: 2 entries would be deleted"
    assert cli_json(proxy, "ls")["total"] == 3
    assert cli(proxy, "invalidate", "--model", "model-a").stdout.strip() == "deleted 2 entries"
    assert [entry["model"] for entry in cli_json(proxy, "ls")["entries"]] == ["model-b"]

    refused = cli(proxy, "flush")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert cli(proxy, "flush", "--yes").stdout.strip() == "deleted 1 entries"
    assert cli_json(proxy, "ls")["total"] == 0

    events = cli_json(proxy, "audit")["events"]
    assert [(event["action"], event["deleted"], event["dry_run"]) for event in events[:3]] == [
        ("flush", 1, False),
        ("invalidate", 2, False),
        ("invalidate", 0, True),
    ]
    assert "invalidate" in cli(proxy, "audit").stdout


def test_stats_prints_a_table_and_json(proxy: str, api_key: str, upstream: FakeUpstream) -> None:
    fill(proxy, api_key, upstream, {"model-a": ["Tell me a joke."]})
    stats = cli_json(proxy, "stats", "--from=-10m", "--bucket", "1m")
    assert stats["bucket_s"] == 60 and "totals" in stats
    table = cli(proxy, "stats", "--from=-10m", "--bucket", "1m")
    assert table.returncode == 0, table.stderr
    assert "hit_rate" in table.stdout and "total" in table.stdout


def test_a_wrong_token_or_no_proxy_is_a_clear_error(proxy: str) -> None:
    wrong = cli(proxy, "ls", token="not-the-token")
    assert wrong.returncode == 1
    assert "HTTP 401" in wrong.stderr and "admin bearer token" in wrong.stderr
    unreachable = cli("http://127.0.0.1:9", "ls")
    assert unreachable.returncode == 1 and "cannot reach the proxy" in unreachable.stderr


def test_ls_filters_anthropic_messages_by_kind(proxy: str, api_key: str, upstream: FakeUpstream) -> None:
    fill(proxy, api_key, upstream, {"model-a": ["What is the capital of France?"]})
    with anthropic_sdk(proxy, upstream, api_key=api_key) as sdk:
        sdk.messages.create(model="model-a", max_tokens=50, messages=[{"role": "user", "content": "Name a prime."}])

    listed = cli_json(proxy, "ls", "--kind", "messages")
    assert [(entry["kind"], entry["prompt"]) for entry in listed["entries"]] == [("messages", "Name a prime.")]
