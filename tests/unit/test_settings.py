"""Settings precedence (flags > env > YAML > defaults) and validation messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmproxy.settings import SettingsError, load_settings, with_upstream_for_all


def test_defaults_point_at_openai_with_an_embedded_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("LLMPROXY_")]:
        monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.upstream.base_url == "https://api.openai.com/v1"
    assert settings.redis.url is None
    assert settings.upstream.api_key is None and settings.admin.token is None


def test_env_overrides_yaml_and_flags_override_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "llmproxy.yaml"
    config.write_text("server:\n  port: 7000\n  host: 0.0.0.0\ncache:\n  default_ttl_s: 60\n")
    monkeypatch.setenv("LLMPROXY_SERVER__PORT", "7100")
    settings = load_settings(config, {"server": {"host": "127.0.0.2"}})
    assert (settings.server.host, settings.server.port, settings.cache.default_ttl_s) == ("127.0.0.2", 7100, 60)


def test_secrets_are_redacted_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMPROXY_UPSTREAM__API_KEY", "sk-very-secret")
    monkeypatch.setenv("LLMPROXY_ADMIN__TOKEN", "admin-secret-0123456789")
    settings = load_settings()
    assert "sk-very-secret" not in repr(settings) and "admin-secret-0123456789" not in repr(settings)
    assert settings.upstream.api_key is not None and settings.upstream.api_key.get_secret_value() == "sk-very-secret"


def test_invalid_values_name_the_setting_and_its_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "llmproxy.yaml"
    config.write_text("cache:\n  default_ttl_s: 0\n  ttl: 5\nupstream:\n  base_url: ftp://example.com\n")
    monkeypatch.setenv("LLMPROXY_REDIS__URL", "http://not-redis")
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert "cache.default_ttl_s (LLMPROXY_CACHE__DEFAULT_TTL_S)" in message
    assert "cache.ttl" in message and "Extra inputs are not permitted" in message
    assert "upstream.base_url" in message and "redis.url" in message


def test_ttl_bounds_must_be_consistent() -> None:
    with pytest.raises(SettingsError, match="min_ttl_s <= default_ttl_s <= max_ttl_s"):
        load_settings(None, {"cache": {"default_ttl_s": 10, "max_ttl_s": 5}})


def test_missing_or_broken_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("server: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(broken)


def test_base_url_trailing_slash_is_normalised() -> None:
    assert load_settings(None, {"upstream": {"base_url": "http://x:1/v1/"}}).upstream.base_url == "http://x:1/v1"


def test_shipped_config_file_loads_and_matches_the_defaults() -> None:
    shipped = Path(__file__).parents[2] / "config" / "llmproxy.yaml"
    assert load_settings(shipped).model_dump() == load_settings().model_dump()


def test_the_anthropic_upstream_follows_serve_upstream_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("LLMPROXY_")]:
        monkeypatch.delenv(name)
    assert load_settings().anthropic.base_url == "https://api.anthropic.com"
    flagged = with_upstream_for_all(
        load_settings(None, {"upstream": {"base_url": "http://fake:9000/v1/"}}), "http://fake:9000/v1"
    )
    assert flagged.anthropic.base_url == "http://fake:9000"
    monkeypatch.setenv("LLMPROXY_ANTHROPIC__BASE_URL", "https://claude.example")
    configured = with_upstream_for_all(load_settings(), "http://fake:9000/v1")
    assert configured.anthropic.base_url == "https://claude.example"


def test_the_anthropic_upstream_name_is_reserved() -> None:
    with pytest.raises(SettingsError, match="anthropic"):
        load_settings(None, {"upstreams": {"anthropic": {"base_url": "http://x/v1"}}})


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ({"mode": "sentinel"}, "needs redis.sentinels"),
        ({"mode": "sentinel", "sentinels": ["no-port"]}, "is not host:port"),
        ({"mode": "sentinel", "sentinels": ["host:99999"]}, "is not host:port"),
        ({"mode": "cluster"}, "needs redis.url"),
        ({"mode": "cluster", "url": "unix:///tmp/redis.sock"}, "clusters speak TCP"),
        ({"mode": "replicated", "url": "redis://h:6379"}, "mode"),
        ({"search_url": "http://search:6379"}, "search_url"),
    ],
)
def test_redis_deployment_settings_are_checked(redis: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(None, {"redis": redis})


def test_redis_mode_and_sentinels_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMPROXY_REDIS__MODE", "sentinel")
    monkeypatch.setenv("LLMPROXY_REDIS__SENTINELS", '["s-0:26379", "s-1:26379"]')
    redis = load_settings(None).redis
    assert (redis.mode, redis.sentinels, redis.sentinel_service) == ("sentinel", ["s-0:26379", "s-1:26379"], "mymaster")
