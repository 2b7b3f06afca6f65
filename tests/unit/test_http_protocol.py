"""The protocol options the server passes to uvicorn (pure: no socket is opened)."""

from __future__ import annotations

import pickle

import uvicorn

from llmproxy.commands.http_protocol import DeadlineHttpProtocol, server_options
from llmproxy.settings import ServerSettings


def test_options_install_the_deadline_protocol_with_the_configured_deadlines() -> None:
    protocol = server_options(ServerSettings(header_timeout_s=3, body_read_timeout_s=7))["http"]
    assert protocol.func is DeadlineHttpProtocol
    assert protocol.keywords == {"header_timeout_s": 3, "body_timeout_s": 7}


def test_the_config_survives_the_pickling_that_starts_worker_processes() -> None:
    # uvicorn spawns workers and hands them the Config by pickle: the protocol must travel with it.
    factory = "llmproxy.commands.serve:app_from_environment"
    config = uvicorn.Config(factory, factory=True, **server_options(ServerSettings()))
    copied = pickle.loads(pickle.dumps(config))
    assert copied.http.func is DeadlineHttpProtocol
    assert copied.http.keywords == {"header_timeout_s": 10.0, "body_timeout_s": 10.0}
