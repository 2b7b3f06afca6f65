"""The routes file: YAML validated into an immutable RouteTable, every error naming file, route and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

DEFAULT_BLOCK_MESSAGE = "This request is not allowed by this proxy's policy."
BLOCKED_CODE = "blocked_by_route"
UNDECIDED_CODE = "route_undecided"
UNDECIDED_STATUS = 403  # a policy refusal, like a block route: SDKs do not retry it into a busy embedder
RESERVED_NAMES = frozenset({"default", "undecided"})  # the names of the two decisions no route file makes

# Why a prompt could not be routed: the embedding timed out or failed, or the prompt is past router.max_windows.
UndecidedReason = Literal["timeout", "embedder-error", "too-long"]


class RoutesError(Exception):
    """The routes cannot be used: the message names the file, the route (name or index) and the field."""


@dataclass(frozen=True, slots=True)
class ForwardAction:
    """Send the request upstream; None upstream is the default one, None model keeps the caller's."""

    upstream: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class RespondAction:
    """Answer with fixed content, without calling any upstream."""

    content: str


@dataclass(frozen=True, slots=True)
class BlockAction:
    """Refuse the request with an OpenAI-shaped error of this status and code."""

    status: int
    message: str
    code: str = BLOCKED_CODE


Action = ForwardAction | RespondAction | BlockAction


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How the cache treats requests of a route: bypass it, or keep answers for ttl_s (None: the default TTL)."""

    no_cache: bool = False
    ttl_s: int | None = None


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The route a prompt took, and the distance to its nearest reference (None for the default route)."""

    name: str
    action: Action
    cache: CachePolicy
    distance: float | None
    undecided: UndecidedReason | None = None  # set on the decision taken for a prompt that could not be routed


DEFAULT_ROUTE = RouteDecision("default", ForwardAction(None, None), CachePolicy(), None)

_UNDECIDED_CAUSES: dict[UndecidedReason, str] = {
    "timeout": "the embedding model did not answer in time; retry later",
    "embedder-error": "the embedding model failed; retry later",
    "too-long": "the prompt is longer than this proxy routes (router.max_windows)",
}


def undecided_route(reason: UndecidedReason, refuse: bool) -> RouteDecision:
    """What a prompt that could not be routed does: never cached; refused, or forwarded unchanged."""
    if refuse:
        cause = _UNDECIDED_CAUSES[reason]
        message = f"This request could not be routed, and this proxy refuses what it cannot route: {cause}."
        action: Action = BlockAction(UNDECIDED_STATUS, message, UNDECIDED_CODE)
    else:
        action = ForwardAction(None, None)
    return RouteDecision("undecided", action, CachePolicy(no_cache=True), None, reason)


@dataclass(frozen=True, slots=True)
class Route:
    """One operator route: prompts within distance_threshold (cosine) of a reference take action."""

    name: str
    references: tuple[str, ...]
    distance_threshold: float
    action: Action
    cache: CachePolicy


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The routes in force, in file order."""

    routes: tuple[Route, ...]


_Text = Annotated[str, StringConstraints(pattern=r"\S")]


class _CacheModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    no_cache: bool = False
    ttl_s: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_policy(self) -> _CacheModel:
        if self.no_cache and self.ttl_s is not None:
            raise ValueError("set either no_cache or ttl_s, not both")
        return self


class _RouteModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    references: list[_Text] = Field(min_length=1)
    distance_threshold: float = Field(gt=0, le=1)
    cache: _CacheModel = Field(default_factory=_CacheModel)


class _ForwardModel(_RouteModel):
    action: Literal["forward"]
    upstream: str | None = None
    model: _Text | None = None


class _RespondModel(_RouteModel):
    action: Literal["respond"]
    content: _Text


class _BlockModel(_RouteModel):
    action: Literal["block"]
    status: int = Field(403, ge=400, le=499)
    message: _Text = DEFAULT_BLOCK_MESSAGE


class _RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: list[Annotated[_ForwardModel | _RespondModel | _BlockModel, Field(discriminator="action")]] = Field(
        default_factory=list
    )


def load_routes(path: Path, upstream_names: frozenset[str]) -> RouteTable:
    """Read and validate a routes file; forward routes may only name upstreams in upstream_names.

    Raises:
        RoutesError: the file is missing or unreadable, is not YAML, or a field is invalid.
    """
    raw = _read_yaml(path)
    try:
        parsed = _RoutesFile.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        raise RoutesError(f"{path}: " + "; ".join(_describe_errors(exc, raw))) from exc
    problems = _check_names(parsed) + _check_upstreams(parsed, upstream_names)
    if problems:
        raise RoutesError(f"{path}: " + "; ".join(problems))
    return RouteTable(tuple(map(_route, parsed.routes)))


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutesError(f"{path}: cannot read the routes file: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RoutesError(f"{path}: not valid YAML: {exc}") from exc


def _describe_errors(exc: ValidationError, raw: object) -> list[str]:
    return [_describe_error(error["loc"], error["msg"], raw) for error in exc.errors(include_url=False)]


def _describe_error(loc: tuple[int | str, ...], message: str, raw: object) -> str:
    if len(loc) < 2 or loc[0] != "routes" or not isinstance(loc[1], int):
        return f"{'.'.join(map(str, loc)) or 'top level'}: {message}"
    index = loc[1]
    # loc[2] is the action tag of the union member; a missing or unknown tag has no deeper location.
    field = ".".join(map(str, loc[3:])) or "action"
    return f"{_route_label(index, raw)}.{field}: {message}"


def _route_label(index: int, raw: object) -> str:
    routes = raw.get("routes") if isinstance(raw, dict) else None
    entry = routes[index] if isinstance(routes, list) and index < len(routes) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"routes[{index}] ({name})" if isinstance(name, str) else f"routes[{index}]"


def _check_names(parsed: _RoutesFile) -> list[str]:
    first_index: dict[str, int] = {}
    reserved = ", ".join(sorted(RESERVED_NAMES))
    problems = [
        f"routes[{index}] ({route.name}).name: reserved for the proxy's own decisions ({reserved})"
        for index, route in enumerate(parsed.routes)
        if route.name in RESERVED_NAMES
    ]
    for index, route in enumerate(parsed.routes):
        if route.name in first_index:
            first = first_index[route.name]
            problems.append(
                f"routes[{index}] ({route.name}).name: duplicate route name (first used by routes[{first}])"
            )
        first_index.setdefault(route.name, index)
    return problems


def _check_upstreams(parsed: _RoutesFile, upstream_names: frozenset[str]) -> list[str]:
    declared = ", ".join(sorted(upstream_names)) or "none"
    return [
        f"routes[{index}] ({route.name}).upstream: unknown upstream {route.upstream!r} (declared: {declared})"
        for index, route in enumerate(parsed.routes)
        if isinstance(route, _ForwardModel) and route.upstream is not None and route.upstream not in upstream_names
    ]


def _route(model: _ForwardModel | _RespondModel | _BlockModel) -> Route:
    return Route(
        name=model.name,
        references=tuple(model.references),
        distance_threshold=model.distance_threshold,
        action=_action(model),
        cache=CachePolicy(no_cache=model.cache.no_cache, ttl_s=model.cache.ttl_s),
    )


def _action(model: _ForwardModel | _RespondModel | _BlockModel) -> Action:
    if isinstance(model, _ForwardModel):
        return ForwardAction(upstream=model.upstream, model=model.model)
    if isinstance(model, _RespondModel):
        return RespondAction(content=model.content)
    return BlockAction(status=model.status, message=model.message)
