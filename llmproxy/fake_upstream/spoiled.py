"""Hostile 200 answers of the fake: the JSON body cut in half, or an HTML page (a proxy or portal in the way)."""

import orjson
from starlette.responses import Response

from llmproxy.fake_upstream.faults import BadBody
from llmproxy.fake_upstream.replies import Json

HTML_PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def spoiled_response(answer: Json, kind: BadBody) -> Response:
    """A 200 that is not the answer: half of its JSON, or an HTML page."""
    if kind == "html":
        return Response(HTML_PAGE, media_type="text/html")
    body = orjson.dumps(answer)
    return Response(body[: len(body) // 2], media_type="application/json")
