"""Real HTTP servers for tests: free loopback ports, uvicorn in a background thread, and waiting for a server
process a test started to answer."""

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT_S = 60.0  # a proxy loads its embedding model before it starts: slow on a busy machine
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", **options: Any) -> Iterator[str]:
    """Run the app on a free port in a daemon thread; yield its base URL; stop it on exit.

    `options` go to uvicorn.Config (the proxy's come from llmproxy.commands.http_protocol.server_options).

    Raises:
        RuntimeError: the server did not start within START_TIMEOUT_S.
    """
    port = free_port()
    config = uvicorn.Config(app, host=host, port=port, loop="asyncio", lifespan="on", log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        _wait_started(server, thread)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT_S)


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited before it started (port taken or lifespan failed?)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start within {START_TIMEOUT_S} s")
        time.sleep(0.005)  # a poll interval, not a readiness guess: the loop exits on `server.started`


def wait_answering(url: str, process: subprocess.Popen[Any], timeout_s: float, log: Path | None = None) -> None:
    """Poll `url` until it answers 200; fail, with the process's log, if the process exits first or time runs out."""

    def logged() -> str:
        return f":\n{log.read_text()}" if log is not None else ""

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the process exited before {url} answered{logged()}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout_s} s{logged()}")
