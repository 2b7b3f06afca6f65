"""Semantic routing: operator routes from YAML, matched by embedding distance to their references."""

from llmproxy.routing.router import Router
from llmproxy.routing.table import (
    DEFAULT_ROUTE,
    Action,
    BlockAction,
    CachePolicy,
    ForwardAction,
    RespondAction,
    Route,
    RouteDecision,
    RoutesError,
    RouteTable,
    load_routes,
)

__all__ = [
    "DEFAULT_ROUTE",
    "Action",
    "BlockAction",
    "CachePolicy",
    "ForwardAction",
    "RespondAction",
    "Route",
    "RouteDecision",
    "RouteTable",
    "Router",
    "RoutesError",
    "load_routes",
]
