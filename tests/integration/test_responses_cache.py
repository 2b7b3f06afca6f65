"""The Responses API through the proxy with the official openai SDK: exact and semantic hits, JSON and streams
serving each other, structured outputs, tool turns, the bypass rule, what is never stored, single-flight, an
abandoned stream, the router, metrics, the admin catalog and the console."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.responses import FunctionToolParam, Response
from playwright.sync_api import Browser, expect
from pydantic import BaseModel

from tests.conftest import FakeUpstream
from tests.integration.test_cache_cli import cli
from tests.integration.test_metrics import scrape, scrape_until, value
from tests.support.admin import ADMIN_TOKEN, AdminProxy
from tests.support.console import console_page
from tests.support.router import BLOCKED_PROMPT, ROUTES, routes_file_in

MODEL = "fake-model"
RESPONSES = "/v1/responses"
QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


class CityFacts(BaseModel):
    city: str
    population: int


@pytest.fixture
def fake(upstream_url: str, recorder: str) -> FakeUpstream:
    return FakeUpstream(upstream_url, recorder)


def sdk_for(url: str, api_key: str, fake: FakeUpstream) -> OpenAI:
    return OpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0, timeout=30, default_headers=fake.headers)


@pytest.fixture
def sdk(proxy_url: str, api_key: str, fake: FakeUpstream) -> Iterator[OpenAI]:
    with sdk_for(proxy_url, api_key, fake) as client:
        yield client


def create(sdk: OpenAI, text: Any = QUESTION, **options: Any) -> tuple[Response, dict[str, str]]:
    """One JSON `responses.create`: the response and the proxy's headers."""
    raw = sdk.responses.with_raw_response.create(model=MODEL, input=text, **options)
    return raw.parse(), dict(raw.headers)


def streamed(sdk: OpenAI, text: Any = QUESTION, **options: Any) -> tuple[Response, list[str], dict[str, str]]:
    """One `responses.create(stream=True)`: the final response, the event types in order, and the headers."""
    raw = sdk.responses.with_raw_response.create(model=MODEL, input=text, stream=True, **options)
    events = list(raw.parse())
    final = events[-1]
    assert final.type == "response.completed"
    return final.response, [event.type for event in events], dict(raw.headers)


# --- L1, L2, and JSON and streams serving each other ---------------------------------------------


def test_a_repeat_is_an_l1_hit_with_the_original_response(sdk: OpenAI, fake: FakeUpstream) -> None:
    first, first_headers = create(sdk)
    second, second_headers = create(sdk)
    assert (first_headers["x-cache"], second_headers["x-cache"]) == ("MISS", "HIT-L1")
    assert second.id == first.id and second.output_text == first.output_text  # the id a client chains with
    assert fake.calls(RESPONSES) == 1


def test_a_paraphrase_is_an_l2_hit(sdk: OpenAI, fake: FakeUpstream) -> None:
    original, _ = create(sdk, QUESTION)
    answer, headers = create(sdk, [{"role": "user", "content": [{"type": "input_text", "text": PARAPHRASE}]}])
    assert headers["x-cache"] == "HIT-L2" and answer.output_text == original.output_text
    assert fake.calls(RESPONSES) == 1


@pytest.mark.parametrize(
    "variant",
    [{"instructions": "Answer like a pirate."}, {"temperature": 1.5}, {"tools": [WEATHER]}],
    ids=["instructions", "temperature", "tools"],
)
def test_a_paraphrase_with_other_instructions_or_parameters_is_a_miss(
    sdk: OpenAI, fake: FakeUpstream, variant: dict[str, Any]
) -> None:
    create(sdk, QUESTION)
    _, headers = create(sdk, PARAPHRASE, **variant)
    assert headers["x-cache"] == "MISS"
    assert fake.calls(RESPONSES) == 2


def test_changed_instructions_are_a_miss_even_for_the_same_input(sdk: OpenAI, fake: FakeUpstream) -> None:
    create(sdk, instructions="be brief")
    _, headers = create(sdk, instructions="be thorough")
    assert headers["x-cache"] == "MISS" and fake.calls(RESPONSES) == 2


def test_a_chained_turn_is_cached_within_its_previous_response(sdk: OpenAI, fake: FakeUpstream) -> None:
    first, _ = create(sdk, "Remember that my name is Ada.")
    chained = [create(sdk, text, previous_response_id=first.id)[1]["x-cache"] for text in (QUESTION, PARAPHRASE)]
    unchained = create(sdk, PARAPHRASE)[1]["x-cache"]
    assert (chained, unchained) == (["MISS", "HIT-L2"], "MISS")  # the previous response is the paraphrase's context
    assert fake.calls(RESPONSES) == 3


def test_no_hits_across_protocols(sdk: OpenAI, fake: FakeUpstream) -> None:
    sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    _, headers = create(sdk, QUESTION)
    assert headers["x-cache"] == "MISS"
    assert (fake.calls("/v1/chat/completions"), fake.calls(RESPONSES)) == (1, 1)


def test_a_json_miss_serves_a_later_stream(sdk: OpenAI, fake: FakeUpstream) -> None:
    stored, _ = create(sdk)
    replayed, types, headers = streamed(sdk)
    assert headers["x-cache"] == "HIT-L1" and headers["content-type"].startswith("text/event-stream")
    assert replayed.id == stored.id and replayed.output_text == stored.output_text
    assert types.count("response.output_text.delta") > 1
    assert fake.calls(RESPONSES) == 1


def test_a_stream_miss_serves_a_later_json_request(sdk: OpenAI, fake: FakeUpstream) -> None:
    relayed, types, headers = streamed(sdk)
    stored, json_headers = create(sdk)
    assert (headers["x-cache"], json_headers["x-cache"]) == ("MISS", "HIT-L1")
    assert types[0] == "response.created"
    assert stored.id == relayed.id and stored.output_text == relayed.output_text
    assert fake.calls(RESPONSES) == 1


def test_the_sdk_stream_helper_works_on_a_hit(sdk: OpenAI, fake: FakeUpstream) -> None:
    stored, _ = create(sdk)
    with sdk.responses.stream(model=MODEL, input=QUESTION) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1 and "".join(deltas) == stored.output_text
    assert final.id == stored.id and final.output_text == stored.output_text
    assert fake.calls(RESPONSES) == 1


def test_responses_parse_with_a_pydantic_model_is_cached(sdk: OpenAI, fake: FakeUpstream) -> None:
    first = sdk.responses.parse(model=MODEL, input="Facts about Paris, please.", text_format=CityFacts)
    second = sdk.responses.parse(model=MODEL, input="Facts about Paris, please.", text_format=CityFacts)
    with sdk.responses.stream(model=MODEL, input="Facts about Paris, please.", text_format=CityFacts) as stream:
        third = stream.get_final_response()
    assert isinstance(first.output_parsed, CityFacts)
    assert second.output_parsed == first.output_parsed and third.output_parsed == first.output_parsed
    assert second.id == third.id == first.id and fake.calls(RESPONSES) == 1


# --- Tool turns -------------------------------------------------------------------------------------


def test_a_function_call_and_its_output_turn_are_cached_exactly_never_by_meaning(
    sdk: OpenAI, fake: FakeUpstream
) -> None:
    ask = [{"role": "user", "content": "Call get_weather for Paris."}]
    call, _ = create(sdk, ask, tools=[WEATHER])
    assert call.output[0].type == "function_call" and call.output[0].name == "get_weather"
    repeat, repeat_headers = create(sdk, ask, tools=[WEATHER])
    assert repeat_headers["x-cache"] == "HIT-L1" and repeat.output[0].model_dump() == call.output[0].model_dump()

    def second_turn(output: str) -> tuple[Response, dict[str, str]]:
        items = [*ask, call.output[0].model_dump(exclude_none=True),
                 {"type": "function_call_output", "call_id": call.output[0].call_id, "output": output}]  # fmt: skip
        return create(sdk, items, tools=[WEATHER])

    answer, first = second_turn("Sunny and 21 degrees Celsius in Paris.")
    again, exact = second_turn("Sunny and 21 degrees Celsius in Paris.")
    _, near = second_turn("Sunny, 21 degrees Celsius in Paris.")
    assert "with tool output" in answer.output_text and again.output_text == answer.output_text
    assert (first["x-cache"], exact["x-cache"], near["x-cache"]) == ("MISS", "HIT-L1", "MISS")
    assert fake.calls(RESPONSES) == 3


# --- Never cached, never stored ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"conversation": "conv_123"}, "conversation"),
        ({"background": True}, "background"),
        ({"prompt": {"id": "pmpt_123", "variables": {"city": "Paris"}}}, "unpinned-prompt"),
    ],
    ids=["conversation", "background", "unpinned-prompt"],
)
def test_stateful_and_unpinned_requests_bypass_the_cache(
    sdk: OpenAI, fake: FakeUpstream, options: dict[str, Any], reason: str
) -> None:
    replies = [create(sdk, **options) for _ in range(2)]
    assert [(headers["x-cache"], headers["x-cache-bypass-reason"]) for _, headers in replies] == [
        ("BYPASS", reason)
    ] * 2
    assert replies[0][0].id != replies[1][0].id and fake.calls(RESPONSES) == 2


def test_a_pinned_prompt_is_cached(sdk: OpenAI, fake: FakeUpstream) -> None:
    prompt = {"id": "pmpt_123", "version": "4"}
    headers = [create(sdk, prompt=prompt)[1]["x-cache"] for _ in range(2)]
    assert headers == ["MISS", "HIT-L1"] and fake.calls(RESPONSES) == 1


@pytest.mark.parametrize(
    ("options", "status"),
    [
        ({"max_output_tokens": 2}, "incomplete"),
        ({"extra_headers": {"X-Fake-Response-Status": "incomplete"}}, "incomplete"),
        ({"extra_headers": {"X-Fake-Response-Status": "failed"}}, "failed"),
    ],
    ids=["max-output-tokens", "content-filter", "failed"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_incomplete_and_failed_answers_are_relayed_but_never_stored(
    sdk: OpenAI, fake: FakeUpstream, options: dict[str, Any], status: str, stream: bool
) -> None:
    for _ in range(2):
        if stream:
            raw = sdk.responses.with_raw_response.create(model=MODEL, input=QUESTION, stream=True, **options)
            last = list(raw.parse())[-1]
            assert last.type == f"response.{status}"
        else:
            raw = sdk.responses.with_raw_response.create(model=MODEL, input=QUESTION, **options)
            assert raw.parse().status == status
        assert raw.headers["x-cache"] == "MISS"
    assert fake.calls(RESPONSES) == 2


def test_a_broken_stream_raises_in_the_sdk_and_is_not_cached(sdk: OpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.APIError):
        with sdk.responses.stream(model=MODEL, input=QUESTION, extra_headers={"X-Fake-Drop-After": "4"}) as stream:
            stream.get_final_response()
    assert create(sdk)[1]["x-cache"] == "MISS" and fake.calls(RESPONSES) == 2


def test_a_client_that_leaves_mid_stream_caches_nothing(sdk: OpenAI, fake: FakeUpstream) -> None:
    raw = sdk.responses.with_raw_response.create(
        model=MODEL, input=QUESTION, stream=True, extra_headers={"X-Fake-Chunk-Delay-Ms": "200"}
    )
    events = raw.parse()
    assert next(iter(events)).type == "response.created"
    events.close()
    assert create(sdk)[1]["x-cache"] == "MISS"
    assert fake.calls(RESPONSES) == 2


def test_a_malformed_request_is_a_400_in_openais_shape(sdk: OpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.responses.create(model=MODEL, input=QUESTION, temperature="hot")  # type: ignore[arg-type]
    assert raised.value.status_code == 400 and isinstance(raised.value.body, dict)
    assert raised.value.body["param"] == "temperature" and raised.value.body["type"] == "invalid_request_error"
    assert fake.calls(RESPONSES) == 0


# --- Single-flight ----------------------------------------------------------------------------------


def test_concurrent_identical_misses_reach_the_upstream_once(proxy_url: str, api_key: str, fake: FakeUpstream) -> None:
    async def together(streams: list[bool]) -> list[tuple[str, str | None]]:
        headers = {**fake.headers, "X-Fake-Latency-Ms": "1000"}
        async with AsyncOpenAI(
            base_url=proxy_url + "/v1", api_key=api_key, max_retries=0, timeout=30, default_headers=headers
        ) as client:
            return await asyncio.gather(*(one(client, stream) for stream in streams))

    async def one(client: AsyncOpenAI, stream: bool) -> tuple[str, str | None]:
        raw = await client.responses.with_raw_response.create(model=MODEL, input=QUESTION, stream=stream)
        if stream:
            events = [event async for event in raw.parse()]
            final = events[-1]
            assert final.type == "response.completed"
            return final.response.output_text, raw.headers.get("x-cache")
        return raw.parse().output_text, raw.headers.get("x-cache")

    answers = asyncio.run(together([False] * 5 + [True] * 5))
    assert fake.calls(RESPONSES) == 1
    assert len({text for text, _ in answers}) == 1
    assert sorted(cache or "" for _, cache in answers).count("MISS") == 1


# --- The router ------------------------------------------------------------------------------------


@pytest.fixture
def routed_sdk(
    start_proxy: Callable[..., AbstractContextManager[str]], tmp_path: Path, api_key: str, fake: FakeUpstream
) -> Iterator[OpenAI]:
    routes = routes_file_in(tmp_path, ROUTES)
    cheap = {"cheap": {"base_url": fake.api_url}}  # the small-talk route's upstream; not asked here
    with start_proxy(router={"routes_file": str(routes)}, upstreams=cheap) as url, sdk_for(url, api_key, fake) as sdk:
        yield sdk


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_respond_route_answers_as_a_completed_response(routed_sdk: OpenAI, fake: FakeUpstream, stream: bool) -> None:
    if stream:
        with routed_sdk.responses.stream(model=MODEL, input="who are you?") as events:
            answer = events.get_final_response()
    else:
        answer, headers = create(routed_sdk, "who are you?")
        assert (headers["x-cache"], headers["x-llmproxy-route"]) == ("BYPASS", "identity")
    assert answer.status == "completed" and answer.output_text == "I am an assistant served through llmproxy."
    assert fake.calls(RESPONSES) == 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_block_route_refuses_in_openais_error_shape(routed_sdk: OpenAI, fake: FakeUpstream, stream: bool) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        routed_sdk.responses.create(model=MODEL, input=BLOCKED_PROMPT, stream=stream)
    assert raised.value.status_code == 403 and "not allowed" in raised.value.message
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "blocked_by_route"
    assert fake.calls(RESPONSES) == 0


# --- Metrics and the admin catalog ---------------------------------------------------------------


def test_metrics_count_responses_under_their_endpoint(proxy_url: str, sdk: OpenAI) -> None:
    def hits(samples: Any) -> float:
        return value(samples, "llmproxy_requests_total", endpoint=RESPONSES, model=MODEL, result="hit_l1", route="none")

    before = hits(scrape(proxy_url))
    create(sdk)
    create(sdk)
    assert hits(scrape_until(proxy_url, lambda samples: hits(samples) > before)) == before + 1


def test_the_catalog_lists_filters_and_invalidates_responses_entries(
    admin_proxy: AdminProxy, api_key: str, fake: FakeUpstream
) -> None:
    with sdk_for(admin_proxy.url, api_key, fake) as sdk:
        create(sdk, [{"role": "user", "content": QUESTION}], instructions="be brief")
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
        listed = admin_proxy.entries(kind="responses")
        assert listed["total"] == 1 and listed["entries"][0]["prompt"] == QUESTION
        shown = cli(admin_proxy.url, "--json", "ls", "--kind", "responses", token=ADMIN_TOKEN)
        assert shown.returncode == 0 and json.loads(shown.stdout)["total"] == 1

        dropped = admin_proxy.invalidate(kind="responses")
        assert dropped.status_code == 200 and dropped.json()["deleted"] == 1
        assert admin_proxy.entries()["total"] == 1  # the chat entry stays
        (event,) = admin_proxy.audit()
        assert (event["action"], event["filters"]["kind"], event["deleted"]) == ("invalidate", "responses", 1)
        assert create(sdk, [{"role": "user", "content": QUESTION}], instructions="be brief")[1]["x-cache"] == "MISS"
    assert fake.calls(RESPONSES) == 2


def test_a_response_answered_by_the_fake_directly_has_the_shape_a_hit_returns(sdk: OpenAI, fake: FakeUpstream) -> None:
    direct = httpx.post(
        fake.api_url + "/responses",
        json={"model": MODEL, "input": "shape check"},
        headers={**fake.headers, "Authorization": "Bearer sk-test"},
    ).json()
    cached, _ = create(sdk, "shape check")
    hit, headers = create(sdk, "shape check")
    assert headers["x-cache"] == "HIT-L1"
    assert set(hit.model_dump(exclude_unset=True)) == set(direct) == set(cached.model_dump(exclude_unset=True))


def test_the_console_finds_a_responses_entry_by_kind_and_shows_its_text(
    browser: Browser, admin_proxy: AdminProxy, api_key: str, fake: FakeUpstream
) -> None:
    with sdk_for(admin_proxy.url, api_key, fake) as sdk:
        answer, _ = create(sdk, QUESTION)
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert admin_proxy.entries()["total"] == 2  # the same prompt, once per protocol
    with console_page(browser, admin_proxy.url) as console:
        console.open("entries")
        console.sign_in(ADMIN_TOKEN)
        page = console.page
        page.get_by_label("Kind").select_option("responses")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#entries-summary")).to_have_text("1 entry matching the search; showing 1–1.")
        (row,) = console.rows("entries-table")
        assert (row[0], row[4]) == (QUESTION, "responses")
        page.get_by_role("button", name=f"View entry: {QUESTION}").click()
        expect(page.get_by_role("dialog", name="Entry").locator("[data-answer]")).to_have_text(answer.output_text)
        console.assert_no_errors()
