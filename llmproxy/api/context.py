"""Access to the lifespan's AppState from a request."""

from __future__ import annotations

from starlette.requests import Request

from llmproxy.state import STATE_KEY, AppState


def app_state(request: Request) -> AppState:
    """The AppState the lifespan built."""
    state: AppState = getattr(request.state, STATE_KEY)
    return state
