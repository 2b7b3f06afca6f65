"""The bare baseline the proxy is compared with: a Starlette handler that does one Redis GET, and one that does none.

    POST /v1/chat/completions   read the body, GET one fixed key (a ~1 KB chat completion JSON), return its bytes
    POST /bare                  read the body, return a ~1 KB chat completion JSON held in memory
    GET  /healthz               200

Served like `llmproxy serve` serves the proxy: one uvicorn worker, uvloop, httptools, log level warning (so
neither writes access log lines; uvicorn's access_log flag is left at its default, as the proxy leaves it).
At startup the key is set to the built-in answer unless it already holds one, so a benchmark can store the
proxy's own L1 answer there first and both return the same bytes.

    python load_tests/baseline_app.py --port 8081 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DEFAULT_KEY = "llmproxy-bench:baseline:completion"
ANSWER = " ".join(["The proxy answered this from Redis without calling the model."] * 12)
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-baseline",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 120, "total_tokens": 140},
    }
).encode()


class State(TypedDict):
    redis: Redis
    key: str


def create_app(redis_url: str, key: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        redis = Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
        await redis.set(key, COMPLETION, nx=True)
        try:
            yield {"redis": redis, "key": key}
        finally:
            await redis.aclose()

    routes = [
        Route("/v1/chat/completions", with_get, methods=["POST"]),
        Route("/bare", bare, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def with_get(request: Request) -> Response:
    await request.body()
    raw = await request.state.redis.get(request.state.key)
    return Response(raw, media_type="application/json")


async def bare(request: Request) -> Response:
    await request.body()
    return Response(COMPLETION, media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b"ok", media_type="text/plain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key", default=DEFAULT_KEY)
    args = parser.parse_args()
    app = create_app(args.redis_url, args.key)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, loop="uvloop", http="httptools", log_level="warning", lifespan="on"
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
