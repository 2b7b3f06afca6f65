"""GET /admin/config: the settings in force, with every secret redacted."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.admin.auth import admin_endpoint, json_response
from llmproxy.api.admin.redaction import redacted_settings
from llmproxy.state import AppState


@admin_endpoint
async def show_config(request: Request, state: AppState) -> Response:
    """The effective configuration (after env, YAML and defaults), secrets replaced by asterisks."""
    return json_response(redacted_settings(state.settings))
