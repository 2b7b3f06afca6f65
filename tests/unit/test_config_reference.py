"""The settings reference (config/llmproxy.example.yaml) is generated from the model and cannot drift."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from llmproxy.commands.config_reference import REGENERATE_COMMAND, env_name, render_reference
from llmproxy.settings import Settings, load_settings

EXAMPLE = Path(__file__).parents[2] / "config" / "llmproxy.example.yaml"
SETTING_LINE = re.compile(r"^(\s*)# (.*)$")


@pytest.fixture(autouse=True)
def _no_llmproxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("LLMPROXY_")]:
        monkeypatch.delenv(name)


def uncommented(text: str) -> str:
    """The reference with every `# setting` line switched on (prose `## ` lines and the header stay comments)."""
    body = text.split("\n\n", 1)[1]
    return "\n".join(SETTING_LINE.sub(r"\1\2", line) for line in body.splitlines()) + "\n"


def leaf_paths(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(leaf_paths(annotation, (*path, name)))
        else:
            paths.append((*path, name))
    return paths


def test_committed_reference_matches_the_settings_model() -> None:
    stale = f"config/llmproxy.example.yaml is stale; regenerate it with: {REGENERATE_COMMAND}"
    assert EXAMPLE.read_text() == render_reference(), stale


def test_reference_uncommented_loads_to_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "llmproxy.yaml"
    config.write_text(uncommented(render_reference()))
    assert "  port: 8080\n" in config.read_text() and "    ef_runtime: 50\n" in config.read_text()
    assert load_settings(config).model_dump() == load_settings().model_dump()


def test_reference_as_written_loads_to_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "llmproxy.yaml"
    config.write_text(render_reference())
    assert load_settings(config).model_dump() == load_settings().model_dump()


def test_every_setting_is_listed_with_its_environment_variable() -> None:
    reference = render_reference()
    paths = [path for path in leaf_paths(Settings) if path != ("upstreams",)]
    for path in paths:
        assert f"## env {env_name(path)};" in reference or f"##   env {env_name(path)};" in reference, path
    assert "LLMPROXY_UPSTREAMS__<NAME>__<KEY>" in reference
    assert env_name(("semantic", "hnsw", "ef_runtime")) == "LLMPROXY_SEMANTIC__HNSW__EF_RUNTIME"


def test_environment_variable_named_in_the_reference_sets_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env_name(("semantic", "hnsw", "ef_runtime")), "77")
    monkeypatch.setenv(env_name(("cache", "default_ttl_s")), "60")
    settings = load_settings()
    assert (settings.semantic.hnsw.ef_runtime, settings.cache.default_ttl_s) == (77, 60)


def test_constraints_and_secrets_are_described() -> None:
    reference = render_reference()
    assert "## env LLMPROXY_SERVER__PORT; int; >= 1; <= 65535\n" in reference
    assert "## env LLMPROXY_ADMIN__TOKEN; SecretStr | null; secret: set it in the environment\n" in reference


def test_cli_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    from llmproxy.commands.cli import main

    assert main(["config-reference"]) == 0
    assert capsys.readouterr().out == render_reference()


def test_list_setting_is_shown_as_a_yaml_list_with_its_item_type() -> None:
    reference = render_reference()
    assert "  ## env LLMPROXY_REDIS__SENTINELS; list[str]\n  # sentinels: []\n" in reference
    assert "## env LLMPROXY_REDIS__MODE; one of standalone | sentinel | cluster\n  # mode: standalone\n" in reference
