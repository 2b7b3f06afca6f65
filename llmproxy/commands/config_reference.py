"""The settings reference: a commented YAML listing every setting, rendered from the Settings model.

`llmproxy config-reference > config/llmproxy.example.yaml` writes it; a test compares the committed file
with this rendering, so the reference cannot drift from the model. Layout of the output:

- `## ` lines are prose: the description, the environment variable, the type and its constraints;
- `# ` lines are settings at their defaults; removing that `# ` gives a file that loads to the defaults.
"""

from __future__ import annotations

import textwrap
import types
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from llmproxy.settings import ENV_PREFIX, Settings

REGENERATE_COMMAND = "llmproxy config-reference > config/llmproxy.example.yaml"
INDENT = "  "
WIDTH = 120

HEADER = f"""\
# llmproxy settings reference: every setting, its default, and its environment variable.
# Generated from llmproxy/settings.py; do not edit by hand. Regenerate with:
#   {REGENERATE_COMMAND}
#
# Precedence: command-line flags > LLMPROXY_* environment variables > the YAML file > defaults.
# The YAML file is config/llmproxy.yaml, or the one named by --config or LLMPROXY_CONFIG.
# Lines starting with `## ` describe a setting; lines starting with `# ` show it at its default:
# copy a line into your config file (without the `# `) to change it, or set its environment variable.
# Dict-valued settings take JSON in the environment, e.g. LLMPROXY_SEMANTIC__MODEL_THRESHOLDS='{{"gpt-4o": 0.1}}'.
# Secrets (upstream.api_key, admin.token) belong in the environment, not in a file.
"""


def render_reference() -> str:
    """The whole reference file, text ending in a newline."""
    blocks = [HEADER.rstrip("\n")]
    for name, field in Settings.model_fields.items():
        blocks.append("\n".join(_top_level(name, field)))
    return "\n\n".join(blocks) + "\n"


def env_name(path: tuple[str, ...]) -> str:
    """The environment variable of a setting: ("cache", "default_ttl_s") -> LLMPROXY_CACHE__DEFAULT_TTL_S."""
    return ENV_PREFIX + "__".join(path).upper()


def _top_level(name: str, field: FieldInfo) -> Iterator[str]:
    section = _section_model(field.annotation)
    if section is None:
        # A dict of sections (upstreams): shown empty, with the variable pattern of its entries.
        yield from _prose(field.description, "## ")
        yield f"## env {env_name((name, '<NAME>', '<KEY>'))}; each entry takes the keys of a section like `upstream`"
        yield f"# {name}: {_flow(_default(field))}"
        return
    # Top-level section headers stay uncommented: an all-commented section parses as null, i.e. defaults.
    yield from _prose(field.description, "## ")
    yield f"{name}:"
    yield from _section_lines(section, (name,), INDENT, "")


def _section_lines(model: type[BaseModel], path: tuple[str, ...], lead: str, inner: str) -> Iterator[str]:
    """Settings of a section; `lead` is the indent before `#`, `inner` the indent after it (nested sections)."""
    for name, field in model.model_fields.items():
        nested = _section_model(field.annotation)
        if nested is not None:
            # Nested sections are commented whole: a null nested section would not validate.
            yield from _prose(field.description, f"{lead}## {inner}")
            yield f"{lead}# {inner}{name}:"
            yield from _section_lines(nested, (*path, name), lead, inner + INDENT)
            continue
        yield from _describe(field, (*path, name), f"{lead}## {inner}")
        yield from _value_lines(name, _default(field), f"{lead}# {inner}")


def _describe(field: FieldInfo, path: tuple[str, ...], prefix: str) -> Iterator[str]:
    yield from _prose(field.description, prefix)
    facts = [f"env {env_name(path)}", _type_name(field.annotation), *_constraints(field)]
    if _is_secret(field.annotation):
        facts.append("secret: set it in the environment")
    yield prefix + "; ".join(facts)


def _prose(text: str | None, prefix: str) -> Iterator[str]:
    for line in textwrap.wrap(text or "", width=WIDTH - len(prefix)):
        yield prefix + line


def _value_lines(name: str, value: object, prefix: str) -> Iterator[str]:
    if isinstance(value, dict) and value:
        yield f"{prefix}{name}:"
        for key, item in value.items():
            yield f"{prefix}{INDENT}{key}: {_flow(item)}"
        return
    yield f"{prefix}{name}: {_flow(value)}"


def _default(field: FieldInfo) -> object:
    value = field.get_default(call_default_factory=True)
    return _plain(value)


def _plain(value: object) -> object:
    """YAML-ready defaults: models as dicts, paths as strings, secrets (always None by default) as None."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, SecretStr):
        raise ValueError("a secret must not have a default")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _flow(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _constraints(field: FieldInfo) -> list[str]:
    symbols = {annotated_types.Ge: ">=", annotated_types.Gt: ">", annotated_types.Le: "<=", annotated_types.Lt: "<"}
    found = []
    for item in field.metadata:
        for kind, symbol in symbols.items():
            if isinstance(item, kind):
                found.append(f"{symbol} {getattr(item, kind.__name__.lower())}")
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            found.append(f"matches {pattern}")
    return found


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) in (Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in get_args(annotation))
    if get_origin(annotation) is Literal:
        return "one of " + " | ".join(str(arg) for arg in get_args(annotation))
    if get_origin(annotation) is list:
        return f"list[{_type_name(get_args(annotation)[0])}]"
    if get_origin(annotation) is dict:
        key, value = get_args(annotation)
        return f"dict[{_type_name(key)}, {_type_name(value)}]"
    if annotation is type(None):
        return "null"
    return str(getattr(annotation, "__name__", annotation))


def _section_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)
