"""Handing the effective settings to uvicorn worker processes, which import the app by name."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from pydantic import BaseModel, SecretStr

from llmproxy.settings import Settings

WORKER_SETTINGS_ENV = "LLMPROXY_WORKER_SETTINGS"


def export_for_workers(settings: Settings) -> None:
    """Put the settings in this process's environment, which the workers inherit (secrets included: they
    came from this environment or its config file in the first place, and only this user can read it)."""
    os.environ[WORKER_SETTINGS_ENV] = orjson.dumps(_plain(settings)).decode()


def imported_settings() -> Settings:
    """The settings the parent exported.

    Raises:
        RuntimeError: this process was not started by `llmproxy serve` with workers.
    """
    raw = os.environ.get(WORKER_SETTINGS_ENV)
    if raw is None:
        raise RuntimeError(f"{WORKER_SETTINGS_ENV} is not set: start workers through `llmproxy serve`")
    return Settings.model_validate(orjson.loads(raw))


def _plain(value: object) -> object:
    """JSON-ready values with secrets revealed (model_dump would mask them)."""
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    return value
