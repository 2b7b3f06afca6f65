"""DirectRoutes: the cached routes' POSTs answered ahead of Starlette, everything else by the app, over real HTTP."""

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from llmproxy.api.direct import DirectRoutes
from tests.support.servers import serve_in_thread

PATH = "/v1/chat/completions"


async def direct(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"direct {request.method} {request.url.path} {body.decode()}")


async def routed(request: Request) -> Response:
    return PlainTextResponse(f"routed {request.method} {request.url.path}")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = Starlette(routes=[Route("/{path:path}", routed, methods=["GET", "POST"])])
    with serve_in_thread(DirectRoutes(app, {PATH: direct})) as base:
        yield base


def test_a_post_to_a_direct_path_is_answered_by_its_endpoint_with_its_body(url: str) -> None:
    response = httpx.post(url + PATH, content=b"hello")
    assert (response.status_code, response.text) == (200, f"direct POST {PATH} hello")


def test_another_method_on_a_direct_path_goes_to_the_app(url: str) -> None:
    assert httpx.get(url + PATH).text == f"routed GET {PATH}"


def test_a_post_to_another_path_goes_to_the_app(url: str) -> None:
    assert httpx.post(url + "/v1/models", content=b"x").text == "routed POST /v1/models"
