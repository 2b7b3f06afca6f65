"""GET /admin/ui/: the web console, static files shipped inside the package (no CDN, no build step).

The page holds no data: every figure comes from the admin API, called by the page with the operator's token, so the
files themselves are served without one. They are read once when the app is built and served from memory, from a
fixed list of names (no path ever reaches the file system), with a Content-Security-Policy that allows only this
origin's own scripts, styles and API calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from llmproxy.errors import NotFoundError

CONSOLE_PATH = "/admin/ui"
INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Scripts, styles, images and fetches from this origin only: no inline script or style, no framing, no forms
# posting elsewhere. The page builds its SVG charts through the DOM, which a strict policy allows.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "cache-control": "no-cache",  # revalidate each time (ETag): an upgraded proxy serves its own console at once
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the console, ready to serve."""

    body: bytes
    content_type: str
    etag: str


def load_assets() -> Mapping[str, Asset]:
    """Every file of the console folder in the package, by name."""
    folder = files("llmproxy.api.admin").joinpath("ui")
    assets = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in CONTENT_TYPES:
            body = item.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            assets[item.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return MappingProxyType(assets)


def console_routes(assets: Mapping[str, Asset]) -> list[BaseRoute]:
    """The routes of the console: its page at /admin/ui/ and each file beside it."""

    async def page(request: Request) -> Response:
        name = str(request.path_params.get("name") or INDEX)
        asset = assets.get(name)
        if asset is None:
            raise NotFoundError(f"The console has no file {name!r}.")
        headers = {**HEADERS, "etag": asset.etag}
        if asset.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, headers=headers, media_type=asset.content_type)

    async def to_page(request: Request) -> Response:
        # Relative links in the page (app.js, ../stats) need the trailing slash; a relative Location keeps any path
        # prefix a reverse proxy in front of this one adds.
        return RedirectResponse("ui/", status_code=308)

    return [
        Route(CONSOLE_PATH, to_page, methods=["GET"]),
        Route(CONSOLE_PATH + "/", page, methods=["GET"]),
        Route(CONSOLE_PATH + "/{name:str}", page, methods=["GET"]),
    ]
