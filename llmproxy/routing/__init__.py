"""Semantic routing: operator routes from YAML, matched by embedding distance to their references."""

from llmproxy.routing.router import PromptEmbedder, Router
from llmproxy.routing.table import (
    DEFAULT_ROUTE,
    UNDECIDED_CODE,
    Action,
    BlockAction,
    CachePolicy,
    ForwardAction,
    RespondAction,
    Route,
    RouteDecision,
    RoutesError,
    RouteTable,
    UndecidedReason,
    load_routes,
    undecided_route,
)

__all__ = [
    "DEFAULT_ROUTE",
    "UNDECIDED_CODE",
    "Action",
    "BlockAction",
    "CachePolicy",
    "ForwardAction",
    "PromptEmbedder",
    "RespondAction",
    "Route",
    "RouteDecision",
    "RouteTable",
    "Router",
    "RoutesError",
    "UndecidedReason",
    "load_routes",
    "undecided_route",
]
