"""Extra real Redis servers for tests that must not disturb the session one: paused, without modules, or configured."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from llmproxy.store.redis_stack_files import find_redis_stack, install_openssl
from tests.support.servers import free_port

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


@contextlib.contextmanager
def plain_redis(data_dir: Path) -> Iterator[str]:
    """A redis-server with no modules loaded (like a Redis 7 without TimeSeries); yields its URL."""
    with _redis_server(data_dir, with_modules=False, options=()) as url:
        yield url


@contextlib.contextmanager
def redis_stack(data_dir: Path, *options: str) -> Iterator[str]:
    """A Redis Stack (search, timeseries...) of the test's own, started with extra options; yields its URL.

    For server settings the session Redis must keep, e.g. `--maxmemory-policy allkeys-lru` or
    `--rename-command CONFIG ""` (as managed Redis services forbid CONFIG).
    """
    with _redis_server(data_dir, with_modules=True, options=options) as url:
        yield url


@contextlib.contextmanager
def _redis_server(data_dir: Path, *, with_modules: bool, options: tuple[str, ...]) -> Iterator[str]:
    files = find_redis_stack(None)
    install_openssl(data_dir / "lib")
    port = free_port()
    args = [str(files.server), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    for module in files.modules if with_modules else ():
        args += ["--loadmodule", str(module)]
    env = {**os.environ, "LD_LIBRARY_PATH": str(data_dir / "lib")}
    proc = subprocess.Popen(
        [*args, *options], cwd=data_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()  # by pid: only the server this helper started
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """SIGSTOP the server with this pid for the block: it accepts connections but answers nothing."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {proc.returncode} while starting")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)  # a poll interval: the loop ends as soon as PING answers
    raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT_S} s")
