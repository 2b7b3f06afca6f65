"""The processes a load script runs against: fake upstream, baseline app and `llmproxy serve`, on free loopback ports.

Each is a child process started with this interpreter, in this checkout (its directory first on PYTHONPATH, so a
virtualenv shared between checkouts still runs this one's code), polled until its readiness URL answers 200, and
stopped by its pid with SIGTERM. Output goes to a log file in the run's work directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BASELINE_APP = REPO / "load_tests" / "baseline_app.py"
START_TIMEOUT_S = 90  # the proxy loads the embedding model and warms it up before /readyz answers
STOP_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(command: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run command until the block ends; yields its pid once ready_url answers 200."""
    environment = {**(env or os.environ)}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    with log.open("wb") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment, cwd=REPO)
    try:
        wait_ready(child, ready_url, log)
        yield child.pid
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_ready(child: subprocess.Popen[bytes], ready_url: str, log: Path) -> None:
    """Poll ready_url until 200. Raises RuntimeError if the child exits or the deadline passes."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{log.stem} exited with {child.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{log.stem} did not become ready at {ready_url}:\n{log.read_text()}")


def cli() -> list[str]:
    return [sys.executable, "-m", "llmproxy"]


@contextmanager
def fake_upstream(workdir: Path, latency_ms: float = 0.0) -> Iterator[str]:
    """The fake model server, without access log lines; yields its base URL (without /v1)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = cli() + ["fake-upstream", "--port", str(port), "--latency-ms", str(latency_ms), "--log-level", "warning"]
    with served(command, url + "/_stats", workdir / "upstream.log"):
        yield url


@contextmanager
def proxy(
    workdir: Path,
    redis_url: str,
    upstream_url: str,
    routes_file: Path | None = None,
    sections: dict[str, dict[str, object]] | None = None,
) -> Iterator[str]:
    """`llmproxy serve`, one worker, log level warning, router off unless routes_file; yields its base URL.

    `sections` adds settings by section, e.g. {"upstream": {"read_timeout_s": 5}}.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = workdir / "llmproxy.yaml"
    settings: dict[str, dict[str, object]] = {
        "server": {"log_level": "warning", "workers": 1},
        "router": {"routes_file": str(routes_file) if routes_file else None},
    }
    for name, values in (sections or {}).items():
        settings[name] = {**settings.get(name, {}), **values}
    config.write_text(json.dumps(settings))  # JSON is YAML
    command = cli() + ["serve", "--port", str(port), "--redis-url", redis_url, "--upstream", upstream_url + "/v1"]
    command += ["--config", str(config)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with served(command, url + "/readyz", workdir / "proxy.log", env):
        yield url


@contextmanager
def baseline(workdir: Path, redis_url: str) -> Iterator[str]:
    """The bare Starlette baseline (load_tests/baseline_app.py); yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(BASELINE_APP), "--port", str(port), "--redis-url", redis_url]
    with served(command, url + "/healthz", workdir / "baseline.log"):
        yield url


def upstream_calls(upstream_url: str) -> int:
    """Requests the fake upstream has received so far."""
    return int(httpx.get(upstream_url + "/_stats", timeout=5).json()["total"])


def settled_upstream_calls(upstream_url: str, quiet_s: float = 0.5, timeout_s: float = 30.0) -> int:
    """The upstream call count once it stopped moving for quiet_s: requests a load generator abandoned at its
    deadline are still being served by the proxy (queued for the model, then forwarded) for a while."""
    deadline = time.monotonic() + timeout_s
    count = upstream_calls(upstream_url)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        latest = upstream_calls(upstream_url)
        if latest == count:
            return count
        count = latest
    return count
