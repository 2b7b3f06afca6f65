"""The fake model server: a Starlette app speaking the OpenAI and Anthropic wire formats, with scripted faults.

OpenAI: chat completions, completions, embeddings, the Responses API, models. Anthropic (requests with an
`anthropic-version` header; errors in Anthropic's shape): Messages, `count_tokens`, models.
"""

from collections.abc import Awaitable, Callable, Iterator

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmproxy.fake_upstream.anthropic_errors import check_anthropic_headers, render_anthropic
from llmproxy.fake_upstream.bodies import Body, include_usage, model_of, parse_body
from llmproxy.fake_upstream.chat import chat_chunks, chat_json, plan_chat
from llmproxy.fake_upstream.completions import completion_chunks, completion_json, plan_completion
from llmproxy.fake_upstream.config import FakeUpstreamConfig
from llmproxy.fake_upstream.embeddings import embeddings_json
from llmproxy.fake_upstream.errors import JsonResponse, RequestRejected, render_http_exception, render_rejection
from llmproxy.fake_upstream.faults import Faults, read_faults
from llmproxy.fake_upstream.messages import message_json, plan_message
from llmproxy.fake_upstream.messages_input import input_tokens
from llmproxy.fake_upstream.messages_stream import MESSAGES_STREAM, message_events
from llmproxy.fake_upstream.named_events import plan_named_events
from llmproxy.fake_upstream.recorder import Recorder, Recorders, read_request
from llmproxy.fake_upstream.replies import Json
from llmproxy.fake_upstream.responses import plan_response, response_json
from llmproxy.fake_upstream.responses_stream import RESPONSES_STREAM, response_events
from llmproxy.fake_upstream.spoiled import spoiled_response
from llmproxy.fake_upstream.sse import EventStreamResponse, plan_events

MODELS = ("fake-model", "fake-model-mini")
MODELS_CREATED = 1_700_000_000
MODELS_CREATED_AT = "2023-11-14T22:13:20Z"  # MODELS_CREATED as Anthropic writes it
ECHO_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Starlette would default a route without methods to GET only.
ANY_METHOD = [*ECHO_METHODS, "OPTIONS"]
DEFAULT_CONFIG = FakeUpstreamConfig()

Handler = Callable[[Request, Faults], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def create_fake_upstream(config: FakeUpstreamConfig = DEFAULT_CONFIG) -> Starlette:
    """A fresh fake model server; its counters and call logs live on `app.state` (one per X-Fake-Recorder)."""
    app = Starlette(
        routes=_routes(),
        exception_handlers={RequestRejected: render_rejection, HTTPException: render_http_exception},
    )
    app.state.config = config
    app.state.recorders = Recorders()
    return app


def run_fake_upstream(host: str, port: int, config: FakeUpstreamConfig, log_level: str = "info") -> None:
    """Serve the fake model server until interrupted."""
    uvicorn.run(create_fake_upstream(config), host=host, port=port, log_level=log_level)


def _routes() -> list[Route]:
    return [
        Route("/_stats", _stats, methods=["GET"]),
        Route("/_requests", _calls, methods=["GET"]),
        Route("/_reset", _reset, methods=["POST"]),
        _openai_route("/v1/chat/completions", _chat, ["POST"]),
        _openai_route("/v1/completions", _completions, ["POST"]),
        _openai_route("/v1/embeddings", _embeddings, ["POST"]),
        _openai_route("/v1/responses", _responses, ["POST"]),
        Route("/v1/messages", _anthropic_endpoint(_messages), methods=["POST"]),
        Route("/v1/messages/count_tokens", _anthropic_endpoint(_count_tokens), methods=["POST"]),
        Route("/v1/models", _by_protocol(_models, _anthropic_models), methods=["GET"]),
        Route("/v1/models/{model_id:path}", _by_protocol(_model, _anthropic_model), methods=["GET"]),
        _openai_route("/v1/echo/{rest:path}", _echo, ECHO_METHODS),
        Route("/v1/{rest:path}", _by_protocol(_unknown, _unknown), methods=ANY_METHOD),
    ]


def _openai_route(path: str, handler: Handler, methods: list[str]) -> Route:
    return Route(path, _openai_endpoint(handler), methods=methods)


def _openai_endpoint(handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await handler(request, await _admit(request, _authenticate))

    return endpoint


def _anthropic_endpoint(handler: Handler) -> Endpoint:
    """An endpoint that checks Anthropic's headers and answers every rejection in Anthropic's shape."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, await _admit(request, check_anthropic_headers))
        except RequestRejected as exc:
            return render_anthropic(exc)

    return endpoint


def _by_protocol(openai: Handler, anthropic: Handler) -> Endpoint:
    """Anthropic's variant for requests with an `anthropic-version` header (its SDK always sends one)."""
    openai_endpoint, anthropic_endpoint = _openai_endpoint(openai), _anthropic_endpoint(anthropic)

    async def endpoint(request: Request) -> Response:
        chosen = anthropic_endpoint if "anthropic-version" in request.headers else openai_endpoint
        return await chosen(request)

    return endpoint


async def _admit(request: Request, authenticate: Callable[[Headers], None]) -> Faults:
    """Count and log the request, delay it, check its key, then raise any requested error status."""
    recorder, config = _recorder(request), _config(request)
    recorder.record(await read_request(request))
    faults = read_faults(request.headers, config)
    if faults.latency_ms > 0:
        await anyio.sleep(faults.latency_ms / 1000)
    authenticate(request.headers)
    status = _failing_status(faults, recorder)
    if status is not None:
        raise _status_fault(status, faults.retry_after)
    return faults


def _authenticate(headers: Headers) -> None:
    # A Bearer key (OpenAI), or a key header as Azure OpenAI (`api-key`) and Anthropic (`x-api-key`) take it.
    scheme, _, token = headers.get("authorization", "").partition(" ")
    key_header = any(headers.get(name, "").strip() for name in ("api-key", "x-api-key"))
    if not key_header and (scheme.lower() != "bearer" or not token.strip()):
        raise RequestRejected(401, "You didn't provide a valid API key.", code="invalid_api_key")


def _failing_status(faults: Faults, recorder: Recorder) -> int | None:
    """The error status this attempt answers with, if any."""
    if faults.fail_times is None:
        return faults.status
    failing = recorder.take_failure(faults.request_id, faults.fail_times)
    return (faults.status or 503) if failing else None


def _status_fault(status: int, retry_after: str | None) -> RequestRejected:
    if status == 429:
        headers = {"retry-after": retry_after or "1"}
        return RequestRejected(429, "fake rate limit", code="rate_limit_exceeded", headers=headers)
    return RequestRejected(
        status, f"fake error status {status}", headers={"retry-after": retry_after} if retry_after else None
    )


async def _chat(request: Request, faults: Faults) -> Response:
    body = parse_body(await request.body())
    meaning = request.headers.get("x-fake-answers", _config(request).answers) == "meaning"
    reply = plan_chat(body, _recorder(request).next_reply("chat"), faults.content_bytes, meaning=meaning)
    return _answer(body, chat_json(reply), lambda: chat_chunks(reply, include_usage(body)), faults)


async def _completions(request: Request, faults: Faults) -> Response:
    body = parse_body(await request.body())
    reply = plan_completion(body, _recorder(request).next_reply("completion"), faults.content_bytes)
    return _answer(body, completion_json(reply), lambda: completion_chunks(reply, include_usage(body)), faults)


async def _responses(request: Request, faults: Faults) -> Response:
    body = parse_body(await request.body())
    outcome = request.headers.get("x-fake-response-status")
    reply = plan_response(body, _recorder(request).next_reply("responses"), outcome)
    if body.get("stream") is True:
        events = plan_named_events(response_events(reply), faults, RESPONSES_STREAM)
        return EventStreamResponse(events, faults.chunk_delay_ms)
    return JsonResponse(response_json(reply))


async def _messages(request: Request, faults: Faults) -> Response:
    body = parse_body(await request.body())
    stop_override = request.headers.get("x-fake-stop-reason")
    reply = plan_message(body, _recorder(request).next_reply("messages"), stop_override)
    if body.get("stream") is True:
        return EventStreamResponse(
            plan_named_events(message_events(reply), faults, MESSAGES_STREAM), faults.chunk_delay_ms
        )
    return JsonResponse(message_json(reply))


async def _count_tokens(request: Request, faults: Faults) -> Response:
    body = parse_body(await request.body())
    model_of(body)
    return JsonResponse({"input_tokens": input_tokens(body)})


async def _embeddings(request: Request, faults: Faults) -> Response:
    body = parse_body(await request.body())
    answer = embeddings_json(body, _config(request).embedding_dim)
    return JsonResponse(answer) if faults.bad_body is None else spoiled_response(answer, faults.bad_body)


def _answer(body: Body, whole: Json, chunks: Callable[[], Iterator[Json]], faults: Faults) -> Response:
    """The reply as asked for (one JSON body, or an event stream), unless a fault spoils it."""
    if faults.bad_body is not None:
        return spoiled_response(whole, faults.bad_body)
    if body.get("stream") is True:
        return EventStreamResponse(plan_events(chunks(), faults), faults.chunk_delay_ms, faults.keepalive_ms)
    return JsonResponse(whole)


async def _models(request: Request, faults: Faults) -> Response:
    return JsonResponse({"object": "list", "data": [_model_json(model) for model in MODELS]})


async def _model(request: Request, faults: Faults) -> Response:
    model_id = request.path_params["model_id"]
    if model_id not in MODELS:
        raise RequestRejected(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
    return JsonResponse(_model_json(model_id))


def _model_json(model_id: str) -> Json:
    return {"id": model_id, "object": "model", "created": MODELS_CREATED, "owned_by": "llmproxy"}


async def _anthropic_models(request: Request, faults: Faults) -> Response:
    data = [_anthropic_model_json(model) for model in MODELS]
    return JsonResponse({"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})


async def _anthropic_model(request: Request, faults: Faults) -> Response:
    model_id = request.path_params["model_id"]
    if model_id not in MODELS:
        raise RequestRejected(404, f"model: {model_id}")
    return JsonResponse(_anthropic_model_json(model_id))


def _anthropic_model_json(model_id: str) -> Json:
    name = model_id.replace("-", " ").title()
    return {
        "type": "model",
        "id": model_id,
        "display_name": name,
        "created_at": MODELS_CREATED_AT,
        "lifecycle": "active",
    }


async def _echo(request: Request, faults: Faults) -> Response:
    return JsonResponse((await read_request(request)).to_json())


async def _unknown(request: Request, faults: Faults) -> Response:
    raise RequestRejected(404, f"Invalid URL ({request.method} {request.url.path})")


async def _stats(request: Request) -> Response:
    return JsonResponse(_recorder(request).stats())


async def _calls(request: Request) -> Response:
    return JsonResponse({"requests": _recorder(request).calls()})


async def _reset(request: Request) -> Response:
    recorders: Recorders = request.app.state.recorders
    recorders.reset(request)
    return JsonResponse({"reset": True})


def _recorder(request: Request) -> Recorder:
    recorders: Recorders = request.app.state.recorders
    return recorders.of(request)


def _config(request: Request) -> FakeUpstreamConfig:
    config: FakeUpstreamConfig = request.app.state.config
    return config
