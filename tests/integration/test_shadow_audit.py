"""Shadow verification of L2 hits through the proxy: real model, real Redis Stack, the fake upstream answering by
meaning (X-Fake-Answers: meaning), the official SDK as the caller.

The fake's meaning answers are equal for prompts with the same content words ("How do I reset my password?",
"how can I reset my password") and unrelated otherwise ("How do I change my password?"), so a test knows which
L2 hits are right. Guards are off in these proxies so that a wrong paraphrase is served at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
import redis
from openai import OpenAI

from llmproxy.fake_upstream.meaning import PHRASINGS, meaning_answer
from llmproxy.proxy.shadow_audit import AUDITOR, WORKERS
from tests.support.admin import AdminProxy, running_admin_proxy
from tests.support.upstream import FakeUpstream, metric
from tests.support.waiting import eventually

STORED = "How do I reset my password?"
SAME = "how can I reset my password"  # same content words: the same answer
OTHER = "How do I change my password?"  # one content word changed: another answer, at distance ≈ 0.13
MEANING = {"X-Fake-Answers": "meaning"}
AUDIT_ALL = {"guards": False, "threshold": 0.2, "audit_rate": 1.0}


@pytest.fixture
def audit_proxy(
    start_proxy: Callable[..., AbstractContextManager[str]],
    key_prefix: str,
    redis_client: redis.Redis,
    upstream: FakeUpstream,
    request: pytest.FixtureRequest,
) -> Iterator[AdminProxy]:
    """A proxy auditing every L2 hit; indirect parameters add `semantic` settings (and `metrics`, a section)."""
    semantic = {**AUDIT_ALL, **getattr(request, "param", {})}
    sections: dict[str, Any] = {"semantic": semantic}
    if "metrics" in semantic:
        sections["metrics"] = semantic.pop("metrics")
    with running_admin_proxy(start_proxy, key_prefix, redis_client, upstream, **sections) as proxy:
        yield proxy
    for key in redis_client.scan_iter(match=f"{key_prefix}:l2audit:*"):
        redis_client.delete(key)


def settings(**semantic: Any) -> Any:
    """The parametrize mark giving `audit_proxy` these settings."""
    return pytest.mark.parametrize("audit_proxy", [semantic], indirect=True, ids=["audit"])


def ask(sdk: OpenAI, text: str, **options: Any) -> tuple[str, str]:
    """The answer's text and its X-Cache status."""
    headers = {**MEANING, **options.pop("extra_headers", {})}
    raw = sdk.chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": text}], extra_headers=headers, **options
    )
    return raw.parse().choices[0].message.content or "", raw.headers["x-cache"]


def means(answer: str, prompt: str) -> bool:
    """Whether the answer is the fake's answer to prompt, in any of its phrasings."""
    return answer in {meaning_answer(prompt, number) for number in range(len(PHRASINGS))}


def audits(proxy: AdminProxy, outcome: str) -> float:
    return metric(proxy.url, "llmproxy_l2_audit_total", model="fake-model", outcome=outcome)


def stats(proxy: AdminProxy) -> dict[str, Any]:
    response = proxy.http.get("/admin/stats")
    assert response.status_code == 200, response.text
    precision: dict[str, Any] = response.json()["l2_precision"]
    return precision


def test_paraphrase_with_the_same_answer_is_audited_as_agreeing(audit_proxy: AdminProxy, api_key: str) -> None:
    sdk = audit_proxy.sdk(api_key)
    ask(sdk, STORED)
    answer, status = ask(sdk, SAME)
    assert status == "HIT-L2" and means(answer, STORED)
    assert eventually(lambda: audits(audit_proxy, "agree") == 1)
    assert audits(audit_proxy, "disagree") == 0
    # The miss, then the audit call, which carried the caller's own credential.
    calls = audit_proxy.fake.requests()
    assert len(calls) == 2
    assert calls[1]["headers"]["authorization"] == f"Bearer {api_key}"


def test_streamed_hit_is_audited_with_one_json_call(audit_proxy: AdminProxy, api_key: str) -> None:
    sdk = audit_proxy.sdk(api_key)
    ask(sdk, STORED)
    stream = sdk.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": SAME}], stream=True, extra_headers=MEANING
    )
    assert means("".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices), STORED)
    assert eventually(lambda: audits(audit_proxy, "agree") == 1)
    audit_call = audit_proxy.fake.requests()[-1]
    assert '"stream":false' in audit_call["body"]


def test_wrong_paraphrase_is_audited_its_copy_replaced_and_logged(audit_proxy: AdminProxy, api_key: str) -> None:
    sdk = audit_proxy.sdk(api_key)
    ask(sdk, STORED)
    served, status = ask(sdk, OTHER)
    assert status == "HIT-L2" and means(served, STORED)  # the wrong answer, served
    assert eventually(lambda: audits(audit_proxy, "disagree") == 1)
    # The promoted copy now holds the fresh answer: the same prompt is not served the wrong one again.
    assert eventually(lambda: audit_proxy.audit() != [])
    answer, status = ask(sdk, OTHER)
    assert status == "HIT-L1" and means(answer, OTHER)
    events = [event for event in audit_proxy.audit() if event["who"] == AUDITOR]
    assert [event["action"] for event in events] == ["l2_disagree"]
    assert events[0]["filters"]["model"] == "fake-model"
    assert events[0]["deleted"] == 1
    assert audit_proxy.fake.calls() == 2  # the miss and the audit call


def test_admin_stats_reports_precision_with_its_interval(audit_proxy: AdminProxy, api_key: str) -> None:
    sdk = audit_proxy.sdk(api_key)
    ask(sdk, STORED)
    for text in (SAME, "How can I reset my password please", "reset my password how", OTHER):
        assert ask(sdk, text)[1] == "HIT-L2"
    assert eventually(lambda: stats(audit_proxy).get("fake-model", {}).get("audited") == 4)
    model = stats(audit_proxy)["fake-model"]
    assert (model["agree"], model["disagree"], model["errors"]) == (3, 1, 0)
    assert model["precision"] == 0.75
    # Wilson's 95% interval for 3 of 4.
    assert (model["precision_low"], model["precision_high"]) == pytest.approx((0.3006, 0.9544), abs=1e-4)
    assert model["effective_threshold"] == model["threshold"] == 0.2


def test_cache_stats_command_prints_the_precision(audit_proxy: AdminProxy, api_key: str) -> None:
    sdk = audit_proxy.sdk(api_key)
    ask(sdk, STORED)
    ask(sdk, SAME)
    assert eventually(lambda: audits(audit_proxy, "agree") == 1)
    env = {name: value for name, value in os.environ.items() if not name.startswith("LLMPROXY_")}
    env |= {"LLMPROXY_URL": audit_proxy.url, "LLMPROXY_ADMIN_TOKEN": audit_proxy.token}
    command = [sys.executable, "-m", "llmproxy", "cache", "stats"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("L2 precision (shadow verification, every audit so far)\n")[1].splitlines()
    assert lines[0].split() == ["model", "audited", "disagree", "errors", "precision", "95%", "interval", "threshold"]
    assert lines[1].split()[:5] == ["fake-model", "1", "0", "0", "1"]


def test_deterministic_request_is_compared_exactly(audit_proxy: AdminProxy, api_key: str) -> None:
    # Numbered answers ("Fake reply #N to: ...") of two calls differ in text but not in meaning.
    numbered = {"X-Fake-Answers": "numbered"}
    sdk = audit_proxy.sdk(api_key)
    ask(sdk, STORED, extra_headers=numbered, temperature=0, seed=7)
    ask(sdk, SAME, extra_headers=numbered, temperature=0, seed=7)
    assert eventually(lambda: audits(audit_proxy, "disagree") == 1)
    ask(sdk, STORED, extra_headers=numbered, temperature=1)
    ask(sdk, SAME, extra_headers=numbered, temperature=1)
    assert eventually(lambda: audits(audit_proxy, "agree") == 1)  # similar enough by embedding


# A 50% budget: four audits are enough to judge (see estimate.clean_record_size), all four wrong.
@settings(max_error_rate=0.5, audit_min_samples=4, audit_threshold_step=0.1, audit_threshold_floor=0.05)
def test_error_budget_tightens_the_threshold_so_the_wrong_paraphrase_misses(
    audit_proxy: AdminProxy, api_key: str, upstream: FakeUpstream
) -> None:
    wrong = [(STORED, OTHER), (STORED, "How do I recover my password?")]
    wrong += [("Tips for a job interview", "Tips for a job interview tomorrow"), (STORED, OTHER + " now")]
    for index, (stored, asked) in enumerate(wrong):
        sdk = audit_proxy.sdk(f"{api_key}-{index}")  # a tenant per pair: each asked prompt finds only its pair
        ask(sdk, stored)
        assert ask(sdk, asked)[1] == "HIT-L2"
    threshold = "llmproxy_l2_effective_threshold"
    assert eventually(lambda: metric(audit_proxy.url, threshold, model="fake-model") == pytest.approx(0.1))

    def tightenings() -> list[dict[str, Any]]:
        return [event for event in audit_proxy.audit() if event["action"] == "l2_threshold_tightened"]

    assert eventually(lambda: tightenings() != [])
    events = tightenings()
    assert [(event["filters"]["from"], event["filters"]["to"]) for event in events] == [(0.2, 0.1)]
    assert stats(audit_proxy)["fake-model"]["effective_threshold"] == pytest.approx(0.1)
    # Distance ≈ 0.13, within the configured 0.2 but not the tightened 0.1.
    sdk = audit_proxy.sdk(f"{api_key}-after")
    ask(sdk, STORED)
    answer, status = ask(sdk, OTHER)
    assert status == "MISS" and means(answer, OTHER)


@settings(audit_max_per_minute=2)
def test_audits_stop_at_the_calls_per_minute_cap(audit_proxy: AdminProxy, api_key: str) -> None:
    sdk = audit_proxy.sdk(api_key)
    ask(sdk, STORED)
    for text in (SAME, "How can I reset my password please", "reset my password how", "my password reset how"):
        assert ask(sdk, text)[1] == "HIT-L2"
    skipped = "llmproxy_l2_audit_skipped_total"
    assert eventually(lambda: metric(audit_proxy.url, skipped, reason="minute_cap") == 2)
    assert eventually(lambda: audits(audit_proxy, "agree") == 2)
    assert audit_proxy.fake.calls() == 3


@settings(
    audit_max_dollars_per_day=0.5, metrics={"prices": {"fake-model": {"input_usd_per_1m": 1e6, "output_usd_per_1m": 0}}}
)
def test_audits_stop_at_the_dollars_per_day_cap(audit_proxy: AdminProxy, api_key: str) -> None:
    # The served answer says 5 prompt tokens: $5 at this price, over the day's cap before the first call.
    sdk = audit_proxy.sdk(api_key)
    ask(sdk, STORED)
    assert ask(sdk, SAME)[1] == "HIT-L2"
    assert eventually(lambda: metric(audit_proxy.url, "llmproxy_l2_audit_skipped_total", reason="dollar_cap") == 1)
    assert audit_proxy.fake.calls() == 1


@settings(audit_queue_size=1)
def test_a_full_audit_queue_drops_audits_and_counts_them(audit_proxy: AdminProxy, api_key: str) -> None:
    sdk = audit_proxy.sdk(api_key)
    ask(sdk, STORED)
    slow = {"X-Fake-Latency-Ms": "3000"}  # the audit calls (which carry the caller's headers) take 3 s each
    hits = 8
    for index in range(hits):
        assert ask(sdk, SAME + "?" * index, extra_headers=slow)[1] == "HIT-L2"

    def dropped() -> float:
        return metric(audit_proxy.url, "llmproxy_l2_audit_skipped_total", reason="queue_full")

    # Every hit is either audited (slowly) or dropped, never waited for.
    assert eventually(lambda: audits(audit_proxy, "agree") + dropped() == hits, within_s=30)
    assert dropped() >= hits - WORKERS - 1  # at most one call per worker in flight and one job waiting
