"""The `llmproxy` command: parses arguments and calls in; no logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmproxy.cache.decision.learned import LearnedModelError
from llmproxy.cache.decision.policy import Policy, load_policy_model
from llmproxy.commands.cache_cli import add_cache_commands
from llmproxy.commands.config_reference import render_reference
from llmproxy.commands.logging_setup import configure_logging
from llmproxy.fake_upstream import FakeUpstreamConfig, run_fake_upstream
from llmproxy.settings import DEFAULT_CONFIG_FILE, SettingsError, load_settings, with_upstream_for_all
from llmproxy.store.embedded_redis import EmbeddedRedisError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    command: Any = args.command
    return int(command(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmproxy", description="OpenAI-compatible semantic caching proxy.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the proxy (starts an embedded Redis Stack unless --redis-url)")
    serve.add_argument("--host", help="listen address [LLMPROXY_SERVER__HOST]")
    serve.add_argument("--port", type=int, help="listen port [LLMPROXY_SERVER__PORT]")
    serve.add_argument(
        "--upstream",
        help="upstream base URL, e.g. https://api.openai.com/v1 [LLMPROXY_UPSTREAM__BASE_URL]; also the Anthropic "
        "upstream's (without /v1) unless anthropic.base_url is configured",
    )
    serve.add_argument("--workers", type=int, help="uvicorn worker processes [LLMPROXY_SERVER__WORKERS]")
    serve.add_argument("--redis-url", help="Redis Stack / Redis 8 URL; omit for the embedded one [LLMPROXY_REDIS__URL]")
    serve.add_argument(
        "--config", type=Path, help=f"YAML settings file [LLMPROXY_CONFIG] (default {DEFAULT_CONFIG_FILE})"
    )
    serve.set_defaults(command=serve_command)

    fake = commands.add_parser("fake-upstream", help="run a fake OpenAI-compatible model server for demos and tests")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=9000)
    fake.add_argument("--latency-ms", type=float, default=0.0, help="delay before each response")
    fake.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between streamed chunks")
    fake.add_argument(
        "--answers",
        default="numbered",
        choices=["numbered", "meaning"],
        help="chat answers: numbered replies, or a function of the prompt's content words (shadow-audit tests)",
    )
    fake.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level; warning drops the per-request access lines (benchmarks)",
    )
    fake.set_defaults(command=fake_upstream_command)

    pairs = commands.add_parser(
        "eval-pairs", help="measure L2 hit precision and recall on labelled prompt pairs (JSON Lines: a, b, same)"
    )
    pairs.add_argument("file", type=Path, metavar="FILE.jsonl", help='one {"a", "b", "same"} object per line')
    pairs.add_argument(
        "--threshold", type=_unit_interval, help="largest cosine distance for a hit (default: semantic.threshold)"
    )
    pairs.add_argument("--no-guards", action="store_true", help="raw cosine distance only, no false-positive guards")
    pairs.add_argument(
        "--decision", choices=["rules", "learned"], help="the L2 decision to measure (default: semantic.decision)"
    )
    pairs.add_argument(
        "--sweep", metavar="START:STOP:STEP", help="report each threshold from START to STOP, with and without guards"
    )
    pairs.add_argument("--limit", type=_positive_int, metavar="N", help="evaluate the first N pairs only")
    pairs.add_argument(
        "--config", type=Path, help=f"YAML settings file [LLMPROXY_CONFIG] (default {DEFAULT_CONFIG_FILE})"
    )
    pairs.set_defaults(command=eval_pairs_command)

    models = commands.add_parser("models", help="prepare the embedding model for serving")
    model_actions = models.add_subparsers(required=True, metavar="ACTION")
    prepare = model_actions.add_parser(
        "prepare", help="export the configured model to ONNX under embeddings.onnx_dir (once; a no-op when done)"
    )
    prepare.add_argument(
        "--config", type=Path, help=f"YAML settings file [LLMPROXY_CONFIG] (default {DEFAULT_CONFIG_FILE})"
    )
    prepare.set_defaults(command=models_prepare_command)

    reference = commands.add_parser(
        "config-reference", help="print every setting with its default and environment variable, as commented YAML"
    )
    reference.set_defaults(command=config_reference_command)

    add_cache_commands(commands)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    # Imported here: the server and the evaluation load the embedding engine, which `llmproxy cache ...` never needs.
    from llmproxy.commands.serve import run_proxy

    overrides = _nested_overrides(
        {
            ("server", "host"): args.host,
            ("server", "port"): args.port,
            ("server", "workers"): args.workers,
            ("upstream", "base_url"): args.upstream,
            ("redis", "url"): args.redis_url,
        }
    )
    try:
        settings = load_settings(_config_file(args.config), overrides)
    except SettingsError as exc:
        print(f"llmproxy: {exc}", file=sys.stderr)
        return 2
    if args.upstream is not None:
        settings = with_upstream_for_all(settings, settings.upstream.base_url)
    configure_logging(settings.server.log_level)
    try:
        run_proxy(settings)
    except EmbeddedRedisError as exc:
        print(f"llmproxy: {exc}", file=sys.stderr)
        return 1
    return 0


def fake_upstream_command(args: argparse.Namespace) -> int:
    config = FakeUpstreamConfig(latency_ms=args.latency_ms, chunk_delay_ms=args.chunk_delay_ms, answers=args.answers)
    run_fake_upstream(args.host, args.port, config, args.log_level)
    return 0


def eval_pairs_command(args: argparse.Namespace) -> int:
    from llmproxy.cache.decision.evaluation import parse_sweep, run_eval_pairs

    try:
        settings = load_settings(_config_file(args.config))
        sweep = parse_sweep(args.sweep) if args.sweep else []
    except (SettingsError, ValueError) as exc:
        print(f"llmproxy: {exc}", file=sys.stderr)
        return 2
    # Defaults are the configured production policy, so the figures describe what the proxy serves.
    threshold = settings.semantic.threshold if args.threshold is None else args.threshold
    decision = "rules" if args.no_guards else args.decision or settings.semantic.decision
    try:
        model = load_policy_model(decision, settings.semantic.decision_model)
    except LearnedModelError as exc:
        print(f"llmproxy: {exc}", file=sys.stderr)
        return 2
    policy = Policy(threshold=threshold, guards=settings.semantic.guards and not args.no_guards, learned=model)
    return run_eval_pairs(args.file, policy, settings.embeddings, sweep=sweep, limit=args.limit)


def models_prepare_command(args: argparse.Namespace) -> int:
    # Imported here: an export loads torch, which no other command needs.
    from llmproxy.embeddings.model_files import ModelFilesError
    from llmproxy.embeddings.onnx_store import OnnxExportError, prepare_for

    try:
        settings = load_settings(_config_file(args.config))
    except SettingsError as exc:
        print(f"llmproxy: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.server.log_level)
    try:
        prepared = prepare_for(settings.embeddings)
    except (OnnxExportError, ModelFilesError) as exc:
        print(f"llmproxy: {exc}", file=sys.stderr)
        return 1
    print(f"{'exported' if prepared.exported else 'already prepared'}: {prepared.folder}")
    return 0


def config_reference_command(args: argparse.Namespace) -> int:
    sys.stdout.write(render_reference())
    return 0


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _config_file(flag: Path | None) -> Path | None:
    """--config, else $LLMPROXY_CONFIG, else config/llmproxy.yaml when it exists."""
    if flag is not None:
        return flag
    from_env = os.environ.get("LLMPROXY_CONFIG")
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def _nested_overrides(flags: dict[tuple[str, str], object]) -> dict[str, dict[str, object]]:
    overrides: dict[str, dict[str, object]] = {}
    for (section, name), value in flags.items():
        if value is not None:
            overrides.setdefault(section, {})[name] = value
    return overrides
