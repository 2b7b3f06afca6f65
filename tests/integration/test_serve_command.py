"""`llmproxy serve` as a user runs it: a real process that starts and stops its embedded Redis Stack."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import anthropic_sdk, openai_sdk
from tests.support.keepalive import closed_by_server, connect, read_response
from tests.support.servers import free_port, wait_answering
from tests.support.upstream import FakeUpstream

STARTUP_TIMEOUT_S = 60.0


@contextmanager
def serve(tmp_path: Path, upstream: FakeUpstream, *extra: str) -> Iterator[tuple[str, Path]]:
    """Run `llmproxy serve` (no Redis URL) until the block ends; yield its URL and its log file."""
    with serve_process(tmp_path, upstream, *extra) as (url, log, _):
        yield url, log


@contextmanager
def serve_process(
    tmp_path: Path, upstream: FakeUpstream, *extra: str
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """Like serve(), also yielding the process; SIGTERM at the end unless it already exited (status 0 required)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMPROXY_")}
    env["LLMPROXY_REDIS__EMBEDDED_DATA_DIR"] = str(tmp_path / "redis-data")
    # The code under test, wherever this checkout is (a worktree too), not whatever the venv installed.
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    log = tmp_path / f"serve-{port}.log"
    command = [sys.executable, "-m", "llmproxy", "serve", "--port", str(port), "--upstream", upstream.api_url, *extra]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(url + "/readyz", process, STARTUP_TIMEOUT_S, log)
        yield url, log, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()


def redis_port(log: Path) -> int:
    match = re.search(r"embedded Redis Stack at redis://127\.0\.0\.1:(\d+)", log.read_text())
    assert match, log.read_text()
    return int(match.group(1))


def port_refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def ask(url: str, fake: FakeUpstream) -> str | None:
    with openai_sdk(url, "sk-serve-test", fake) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="fake-model", messages=[{"role": "user", "content": "persist me"}]
        )
        return raw.headers.get("x-cache")


def test_serve_runs_an_embedded_redis_and_stops_it(tmp_path: Path, upstream: FakeUpstream) -> None:
    with serve(tmp_path, upstream) as (url, log):
        assert [ask(url, upstream), ask(url, upstream)] == ["MISS", "HIT-L1"]
        port = redis_port(log)
        assert not port_refuses(port)
    assert port_refuses(port), "the embedded Redis must stop with the proxy"
    assert (tmp_path / "redis-data").is_dir()


def test_one_upstream_flag_serves_anthropic_messages_too(tmp_path: Path, upstream: FakeUpstream) -> None:
    # --upstream http://fake/v1 also makes http://fake the Anthropic upstream (anthropic.base_url unset).
    with serve(tmp_path, upstream) as (url, _), anthropic_sdk(url, upstream, api_key="sk-serve-test") as sdk:
        statuses = [
            sdk.messages.with_raw_response.create(
                model="fake-model", max_tokens=50, messages=[{"role": "user", "content": "persist me"}]
            ).headers.get("x-cache")
            for _ in range(2)
        ]
        models = sdk.models.list()
    assert statuses == ["MISS", "HIT-L1"]
    assert models.data and models.data[0].type == "model"
    assert upstream.calls("/v1/messages") == 1


def test_embedded_cache_survives_a_restart(tmp_path: Path, upstream: FakeUpstream) -> None:
    with serve(tmp_path, upstream) as (url, _):
        assert ask(url, upstream) == "MISS"
    with serve(tmp_path, upstream) as (url, _):
        assert ask(url, upstream) == "HIT-L1"
    assert upstream.calls() == 1


def test_invalid_configuration_exits_2_with_the_setting_named(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMPROXY_")}
    env["LLMPROXY_CACHE__DEFAULT_TTL_S"] = "-1"
    result = subprocess.run(
        [sys.executable, "-m", "llmproxy", "serve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "cache.default_ttl_s (LLMPROXY_CACHE__DEFAULT_TTL_S)" in result.stderr


@pytest.mark.parametrize("flag", ["--help"])
def test_cli_help_lists_the_commands(flag: str) -> None:
    result = subprocess.run([sys.executable, "-m", "llmproxy", flag], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "serve" in result.stdout and "fake-upstream" in result.stdout


def test_sighup_reloads_the_routes(tmp_path: Path, upstream: FakeUpstream) -> None:
    routes = tmp_path / "config" / "routes.yaml"
    routes.parent.mkdir()
    routes.write_text("routes: []\n")
    config = tmp_path / "config" / "llmproxy.yaml"
    config.write_text(f"router:\n  routes_file: {routes}\n")  # routes load only from a file named in the settings
    with serve(tmp_path, upstream, "--config", str(config)) as (_, log):
        routes.write_text(
            "routes:\n  - name: hello\n    references: [hello]\n    distance_threshold: 0.3\n"
            "    action: respond\n    content: hi\n"
        )
        process_id = int(re.search(r"Started server process \[(\d+)\]", log.read_text()).group(1))  # type: ignore[union-attr]
        os.kill(process_id, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "routes reloaded: hello" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "routes reloaded: hello" in log.read_text()


def test_several_workers_share_one_metrics_view(tmp_path: Path, upstream: FakeUpstream) -> None:
    with serve(tmp_path, upstream, "--workers", "2") as (url, log):
        answers = [ask(url, upstream) for _ in range(6)]
        # Each scrape is answered by one worker, yet counts every request: the workers' files are merged.
        scrapes = [requests_counted(httpx.get(url + "/metrics").text) for _ in range(8)]
    assert answers == ["MISS"] + ["HIT-L1"] * 5
    assert scrapes == [6] * 8
    assert len(set(re.findall(r"Started server process \[(\d+)\]", log.read_text()))) == 2


def requests_counted(exposition: str) -> int:
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        total += sum(sample.value for sample in family.samples if sample.name == "llmproxy_requests_total")
    return int(total)


def test_sigterm_lets_a_stream_in_flight_finish_before_exiting(tmp_path: Path, upstream: FakeUpstream) -> None:
    with serve_process(tmp_path, upstream) as (url, log, process):
        with openai_sdk(url, "sk-serve-test", upstream) as sdk:
            stream = sdk.chat.completions.create(
                model="fake-model",
                messages=[{"role": "user", "content": "a slow answer, please"}],
                stream=True,
                extra_headers={"X-Fake-Chunk-Delay-Ms": "150"},
            )
            chunks = iter(stream)
            first = next(chunks)
            process.send_signal(signal.SIGTERM)  # shutdown starts while the answer is still being streamed
            rest = list(chunks)
        exit_code = process.wait(timeout=30)
    # The SDK raises on a connection cut short; here the stream ran to its end after the signal.
    finishes = [chunk.choices[0].finish_reason for chunk in [first, *rest] if chunk.choices]
    assert len(rest) >= 3 and finishes[-1] == "stop"
    assert exit_code == 0


def test_serve_applies_the_header_deadline(tmp_path: Path, upstream: FakeUpstream) -> None:
    # Worker processes get the same protocol through the pickled uvicorn config (tests/unit/test_http_protocol.py).
    config = tmp_path / "deadlines.yaml"
    config.write_text("server:\n  header_timeout_s: 0.5\n")
    with serve(tmp_path, upstream, "--config", str(config)) as (url, _):
        for _ in range(2):
            with connect(url, timeout_s=10) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: pro")
                assert read_response(sock).status == 408
                assert closed_by_server(sock)
