"""The fake model server: a Starlette app speaking the OpenAI wire format, with scripted faults."""

from collections.abc import Awaitable, Callable, Iterator

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmproxy.fake_upstream.bodies import Body, include_usage, parse_body
from llmproxy.fake_upstream.chat import chat_chunks, chat_json, plan_chat
from llmproxy.fake_upstream.completions import completion_chunks, completion_json, plan_completion
from llmproxy.fake_upstream.config import FakeUpstreamConfig
from llmproxy.fake_upstream.embeddings import embeddings_json
from llmproxy.fake_upstream.errors import JsonResponse, RequestRejected, render_http_exception, render_rejection
from llmproxy.fake_upstream.faults import Faults, read_faults
from llmproxy.fake_upstream.recorder import Recorder, read_request
from llmproxy.fake_upstream.replies import Json
from llmproxy.fake_upstream.spoiled import spoiled_response
from llmproxy.fake_upstream.sse import EventStreamResponse, plan_events

MODELS = ("fake-model", "fake-model-mini")
MODELS_CREATED = 1_700_000_000
ECHO_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Starlette would default a route without methods to GET only.
ANY_METHOD = [*ECHO_METHODS, "OPTIONS"]
DEFAULT_CONFIG = FakeUpstreamConfig()

Handler = Callable[[Request, Faults], Awaitable[Response]]


def create_fake_upstream(config: FakeUpstreamConfig = DEFAULT_CONFIG) -> Starlette:
    """A fresh fake model server; its counters and call log live on `app.state`."""
    app = Starlette(
        routes=_routes(),
        exception_handlers={RequestRejected: render_rejection, HTTPException: render_http_exception},
    )
    app.state.config = config
    app.state.recorder = Recorder()
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
        _openai_route("/v1/models", _models, ["GET"]),
        _openai_route("/v1/models/{model_id:path}", _model, ["GET"]),
        _openai_route("/v1/echo/{rest:path}", _echo, ECHO_METHODS),
        _openai_route("/v1/{rest:path}", _unknown, ANY_METHOD),
    ]


def _openai_route(path: str, handler: Handler, methods: list[str]) -> Route:
    async def endpoint(request: Request) -> Response:
        return await handler(request, await _admit(request))

    return Route(path, endpoint, methods=methods)


async def _admit(request: Request) -> Faults:
    """Count and log the request, delay it, check its key, then raise any requested error status."""
    recorder, config = _recorder(request), _config(request)
    recorder.record(await read_request(request))
    faults = read_faults(request.headers, config)
    if faults.latency_ms > 0:
        await anyio.sleep(faults.latency_ms / 1000)
    _authenticate(request.headers)
    status = _failing_status(faults, recorder)
    if status is not None:
        raise _status_fault(status, faults.retry_after)
    return faults


def _authenticate(headers: Headers) -> None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
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
    reply = plan_chat(body, _recorder(request).next_reply("chat"), faults.content_bytes)
    return _answer(body, chat_json(reply), lambda: chat_chunks(reply, include_usage(body)), faults)


async def _completions(request: Request, faults: Faults) -> Response:
    body = parse_body(await request.body())
    reply = plan_completion(body, _recorder(request).next_reply("completion"), faults.content_bytes)
    return _answer(body, completion_json(reply), lambda: completion_chunks(reply, include_usage(body)), faults)


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


async def _echo(request: Request, faults: Faults) -> Response:
    return JsonResponse((await read_request(request)).to_json())


async def _unknown(request: Request, faults: Faults) -> Response:
    raise RequestRejected(404, f"Invalid URL ({request.method} {request.url.path})")


async def _stats(request: Request) -> Response:
    return JsonResponse(_recorder(request).stats())


async def _calls(request: Request) -> Response:
    return JsonResponse({"requests": _recorder(request).calls()})


async def _reset(request: Request) -> Response:
    _recorder(request).reset()
    return JsonResponse({"reset": True})


def _recorder(request: Request) -> Recorder:
    recorder: Recorder = request.app.state.recorder
    return recorder


def _config(request: Request) -> FakeUpstreamConfig:
    config: FakeUpstreamConfig = request.app.state.config
    return config
