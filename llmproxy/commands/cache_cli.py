"""`llmproxy cache ...`: operator commands against a running proxy's admin API, as tables or JSON."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from llmproxy.commands.admin_client import AdminApiError, AdminClient
from llmproxy.protocols.registry import PROTOCOL_NAMES

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "LLMPROXY_URL"
TOKEN_ENVS = ("LLMPROXY_ADMIN_TOKEN", "LLMPROXY_ADMIN__TOKEN")
FLUSH_CONFIRMATION = "flush-all"
PROMPT_WIDTH = 60


def add_cache_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`llmproxy cache {stats,ls,show,delete,invalidate,flush,audit}`."""
    cache = commands.add_parser("cache", help="inspect and invalidate a running proxy's cache (admin API)")
    cache.add_argument("--url", help=f"proxy base URL [{URL_ENV}] (default {DEFAULT_URL})")
    cache.add_argument("--token", help=f"admin token [{TOKEN_ENVS[0]} or {TOKEN_ENVS[1]}]")
    cache.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    actions = cache.add_subparsers(required=True, metavar="ACTION")

    stats = actions.add_parser("stats", help="hit rate, requests, latency, tokens and cost saved over time")
    stats.add_argument("--from", dest="start", help="epoch seconds, ISO-8601, or relative as --from=-24h (default -1h)")
    stats.add_argument("--to", dest="end", help="epoch seconds, ISO-8601, or now (default now)")
    stats.add_argument("--bucket", help="bucket size, e.g. 60s, 5m, 1h")
    stats.set_defaults(action=stats_action, render=_render_stats)

    ls = actions.add_parser("ls", help="list cached entries, newest first")
    _add_filters(ls)
    ls.add_argument("-q", "--search", help="full-text search in the prompts")
    ls.add_argument("--kind", choices=PROTOCOL_NAMES)
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--offset", type=int, default=0)
    ls.set_defaults(action=ls_action, render=_render_entries)

    show = actions.add_parser("show", help="one entry with its cached response")
    show.add_argument("id")
    show.set_defaults(action=show_action, render=_render_entry)

    delete = actions.add_parser("delete", help="delete one entry (L1 and L2)")
    delete.add_argument("id")
    delete.set_defaults(action=delete_action, render=_render_count)

    invalidate = actions.add_parser("invalidate", help="delete every entry matching all the filters given")
    _add_filters(invalidate)
    invalidate.add_argument("--prompt", help="semantic: entries within --distance of this prompt")
    invalidate.add_argument("--distance", type=float, help="largest cosine distance for --prompt")
    invalidate.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    invalidate.set_defaults(action=invalidate_action, render=_render_count)

    flush = actions.add_parser("flush", help="delete every cached answer (needs --yes)")
    flush.add_argument("--yes", action="store_true", help="confirm: really delete everything")
    flush.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    flush.set_defaults(action=flush_action, render=_render_count)

    audit = actions.add_parser("audit", help="recent invalidations: who, what, when, how many")
    audit.add_argument("--limit", type=int, default=20)
    audit.set_defaults(action=audit_action, render=_render_audit)

    cache.set_defaults(command=cache_command)


def cache_command(args: argparse.Namespace) -> int:
    """Run one `llmproxy cache` action; 1 when the proxy refused or could not be reached."""
    url = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    token = args.token or next((os.environ[name] for name in TOKEN_ENVS if os.environ.get(name)), None)
    try:
        with AdminClient(url, token) as client:
            answer = args.action(client, args)
    except AdminApiError as exc:
        print(f"llmproxy cache: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"llmproxy cache: {exc}", file=sys.stderr)
        return 2
    print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() if args.json else args.render(answer))
    return 0


class UsageError(Exception):
    """The command line asks for something the command refuses (e.g. a flush without --yes)."""


def stats_action(client: AdminClient, args: argparse.Namespace) -> dict[str, Any]:
    return client.get("/admin/stats", {"from": args.start, "to": args.end, "bucket": args.bucket})


def ls_action(client: AdminClient, args: argparse.Namespace) -> dict[str, Any]:
    params = {**_filters(args), "q": args.search, "kind": args.kind, "limit": args.limit, "offset": args.offset}
    return client.get("/admin/entries", params)


def show_action(client: AdminClient, args: argparse.Namespace) -> dict[str, Any]:
    return client.get(f"/admin/entries/{args.id}")


def delete_action(client: AdminClient, args: argparse.Namespace) -> dict[str, Any]:
    return client.delete(f"/admin/entries/{args.id}")


def invalidate_action(client: AdminClient, args: argparse.Namespace) -> dict[str, Any]:
    body = {**_filters(args), "prompt": args.prompt, "distance": args.distance, "dry_run": args.dry_run}
    return client.post("/admin/invalidate", body)


def flush_action(client: AdminClient, args: argparse.Namespace) -> dict[str, Any]:
    if not (args.yes or args.dry_run):
        raise UsageError("flush deletes every cached answer: add --yes to confirm (or --dry-run to count)")
    return client.post("/admin/flush", {"confirm": FLUSH_CONFIRMATION, "dry_run": args.dry_run})


def audit_action(client: AdminClient, args: argparse.Namespace) -> dict[str, Any]:
    return client.get("/admin/audit", {"limit": args.limit})


def _render_stats(answer: dict[str, Any]) -> str:
    columns = ["requests", "hits_l1", "hits_l2", "misses", "errors", "hit_rate", "avg_latency_ms", "tokens_saved"]
    rows = [
        [bucket["start"], *(_cell(bucket.get(name)) for name in columns), _usd(bucket)] for bucket in answer["buckets"]
    ]
    totals = answer["totals"]
    rows.append(["total", *(_cell(totals.get(name)) for name in columns), _usd(totals)])
    title = f"{answer['from']} → {answer['to']}, {answer['bucket_s']} s buckets ({answer['resolution']} series)"
    rendered = title + "\n" + table(["start", *columns, "cost_saved_usd"], rows)
    if answer.get("l2_precision"):
        rendered += "\n\nL2 precision (shadow verification, every audit so far)\n" + _precision(answer["l2_precision"])
    return rendered


def _precision(models: dict[str, Any]) -> str:
    rows = [
        [
            model,
            _cell(figures["audited"]),
            _cell(figures["disagree"]),
            _cell(figures["errors"]),
            _cell(figures["precision"]),
            f"[{_cell(figures['precision_low'])}, {_cell(figures['precision_high'])}]",
            _cell(figures["effective_threshold"]),
        ]
        for model, figures in models.items()
    ]
    return table(["model", "audited", "disagree", "errors", "precision", "95% interval", "threshold"], rows)


def _render_entries(answer: dict[str, Any]) -> str:
    rows = [
        [
            entry["id"][:16],
            entry["scope"][:24],
            entry["model"],
            entry["kind"],
            _when(entry["created_at"]),
            _cell(entry.get("expires_in_s")),
            _shorten(entry["prompt"]),
        ]
        for entry in answer["entries"]
    ]
    shown = f"{len(rows)} of {answer['total']} entries"
    return table(["id", "scope", "model", "kind", "created", "ttl_s", "prompt"], rows) + f"\n{shown}"


def _render_entry(answer: dict[str, Any]) -> str:
    summary = {name: value for name, value in answer.items() if name != "response"}
    lines = [f"{name:<14} {_cell(value)}" for name, value in summary.items()]
    response = orjson.dumps(answer.get("response"), option=orjson.OPT_INDENT_2).decode()
    return "\n".join([*lines, "response:", response])


def _render_audit(answer: dict[str, Any]) -> str:
    rows = [
        [
            event.get("at", ""),
            event.get("who", ""),
            event.get("action", ""),
            _cell(event.get("filters")),
            _cell(event.get("matched")),
            _cell(event.get("deleted")),
            "yes" if event.get("dry_run") else "no",
        ]
        for event in answer["events"]
    ]
    return table(["at", "who", "action", "filters", "matched", "deleted", "dry_run"], rows)


def _render_count(answer: dict[str, Any]) -> str:
    if answer.get("dry_run"):
        return f"dry run: {answer.get('matched', 0)} entries would be deleted"
    return f"deleted {answer.get('deleted', 0)} entries"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, under a header line."""
    widths = [max([len(header), *(len(row[index]) for row in rows)]) for index, header in enumerate(headers)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [headers, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scope", help="exact scope: <tenant> or <tenant>/<namespace>")
    parser.add_argument("--tenant", help="tenant id (hash of the API key, as `ls` shows it)")
    parser.add_argument("--namespace", help="X-LLMProxy-Namespace the entries were stored under")
    parser.add_argument("--model", help="the request's model")
    parser.add_argument("--older-than", help="age, e.g. 3600, 90s, 2h, 7d")


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    names = ("scope", "tenant", "namespace", "model", "older_than")
    return {name: getattr(args, name) for name in names}


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _usd(values: dict[str, Any]) -> str:
    return f"{float(values.get('cost_saved_usd') or 0):.6f}"


def _when(epoch_s: float) -> str:
    return datetime.datetime.fromtimestamp(epoch_s, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PROMPT_WIDTH else flat[: PROMPT_WIDTH - 1] + "…"
