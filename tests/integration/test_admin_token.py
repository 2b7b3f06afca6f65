"""The admin token rule: empty or blank means unset (admin disabled), and a short token refuses to start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from llmproxy.app import create_app
from llmproxy.embeddings.embedder import ModelLoader
from llmproxy.settings import Settings, SettingsError, load_settings
from tests.support.admin import ADMIN_TOKEN
from tests.support.servers import serve_in_thread

BLANK_TOKENS = ["", "   ", "\t\n"]
SHORT_TOKEN = "fifteen-chars-x"  # one short of the 16-character minimum
TOKEN_RULE = "admin.token (LLMPROXY_ADMIN__TOKEN)"
ADMIN_CALLS = [("GET", "/admin/config", None), ("POST", "/admin/flush", {"confirm": "flush-all"})]


def settings_for(redis_url: str, upstream_url: str, key_prefix: str, config_file: Path | None = None) -> Settings:
    """Proxy settings whose admin section comes only from the environment or the YAML file."""
    return load_settings(
        config_file,
        {
            "upstream": {"base_url": upstream_url + "/v1"},
            "redis": {"url": redis_url, "key_prefix": key_prefix},
            "semantic": {"enabled": False},
            "router": {"routes_file": None},
        },
    )


@contextmanager
def proxy(settings: Settings, model_loader: ModelLoader) -> Iterator[str]:
    with serve_in_thread(create_app(settings, model_loader=model_loader)) as url:
        yield url


def assert_admin_disabled(url: str) -> None:
    for method, path, body in ADMIN_CALLS:
        response = httpx.request(method, url + path, json=body)
        assert response.status_code == 403, f"{method} {path} answered {response.status_code}: {response.text[:60]}"
        assert response.json()["error"]["type"] == "permission_denied_error"


@pytest.mark.parametrize("token", BLANK_TOKENS)
def test_a_blank_admin_token_in_the_environment_disables_the_admin_api(
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    upstream_url: str,
    key_prefix: str,
    model_loader: ModelLoader,
) -> None:
    monkeypatch.setenv("LLMPROXY_ADMIN__TOKEN", token)
    settings = settings_for(redis_url, upstream_url, key_prefix)
    with proxy(settings, model_loader) as url:
        assert_admin_disabled(url)
    assert settings.admin.token is None


@pytest.mark.parametrize("token", BLANK_TOKENS)
def test_a_blank_admin_token_in_the_yaml_file_disables_the_admin_api(
    token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    upstream_url: str,
    key_prefix: str,
    model_loader: ModelLoader,
) -> None:
    monkeypatch.delenv("LLMPROXY_ADMIN__TOKEN", raising=False)
    config = tmp_path / "llmproxy.yaml"
    config.write_text(f"admin:\n  token: {json.dumps(token)}\n")  # double-quoted: YAML decodes the escapes
    with proxy(settings_for(redis_url, upstream_url, key_prefix, config), model_loader) as url:
        assert_admin_disabled(url)


def test_a_configured_token_still_opens_the_admin_api_to_its_holder_only(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, upstream_url: str, key_prefix: str, model_loader: ModelLoader
) -> None:
    monkeypatch.setenv("LLMPROXY_ADMIN__TOKEN", f"  {ADMIN_TOKEN}\n")  # a secret file's trailing newline is ignored
    with proxy(settings_for(redis_url, upstream_url, key_prefix), model_loader) as url:
        assert httpx.get(url + "/admin/config").status_code == 401
        assert httpx.get(url + "/admin/config", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200


@pytest.mark.parametrize("source", ["environment", "yaml", "override"])
def test_a_short_admin_token_is_refused_at_load(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMPROXY_ADMIN__TOKEN", raising=False)
    config = tmp_path / "llmproxy.yaml"
    config.write_text(f"admin:\n  token: {SHORT_TOKEN}\n" if source == "yaml" else "")
    if source == "environment":
        monkeypatch.setenv("LLMPROXY_ADMIN__TOKEN", SHORT_TOKEN)
    overrides = {"admin": {"token": SHORT_TOKEN}} if source == "override" else {}
    with pytest.raises(SettingsError) as raised:
        load_settings(config, overrides)
    message = str(raised.value)
    assert TOKEN_RULE in message and "at least 16 characters" in message
    assert SHORT_TOKEN not in message  # the refused secret is not echoed


def test_serve_with_a_short_admin_token_exits_2_with_the_rule_and_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMPROXY_")}
    env["LLMPROXY_ADMIN__TOKEN"] = SHORT_TOKEN
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])  # this checkout's code, not the venv's copy
    result = subprocess.run(
        [sys.executable, "-m", "llmproxy", "serve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert TOKEN_RULE in result.stderr and "at least 16 characters" in result.stderr
    assert "Traceback" not in result.stderr and SHORT_TOKEN not in result.stderr
