"""Start and stop a private Redis Stack (search, timeseries, JSON, bloom) on a loopback port.

This is the zero-setup default for one machine: when no Redis URL is configured, `llmproxy serve` runs
one, and the test suite runs its own (the files it runs are found by `redis_stack_files`). The server
is tracked and stopped by its pid only.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from llmproxy.store.redis_stack_files import (
    FIX_HINT,
    EmbeddedRedisError,
    RedisStackFiles,
    find_redis_stack,
    install_openssl,
)

__all__ = ["EmbeddedRedis", "EmbeddedRedisConfig", "EmbeddedRedisError"]

logger = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_PERSIST_SAVE = "300 1 60 1000"  # snapshot after 5 min with 1 change, or 1 min with 1000 changes
_PORT_TRIES = 3
_POLL_INTERVAL_S = 0.05
_SOCKET_TIMEOUT_S = 0.5
_STOP_TIMEOUT_S = 20.0  # a persistent server writes its snapshot on SIGTERM: give it time
_LOG_TAIL_LINES = 20
_PING = b"*1\r\n$4\r\nPING\r\n"
_INFO_SERVER = b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"
_PR_SET_PDEATHSIG = 1


class _PortInUseError(EmbeddedRedisError):
    """The chosen port was taken before redis-server could bind it."""


@dataclass(frozen=True, slots=True)
class EmbeddedRedisConfig:
    """Where and how to run the embedded server."""

    data_dir: Path
    port: int | None = None
    persist: bool = False
    startup_timeout_s: float = 15.0
    server_path: Path | None = None


class EmbeddedRedis:
    """One redis-server child process with the Redis Stack modules, bound to 127.0.0.1.

    Not thread-safe. Call `start()` from the main thread: on Linux the server is told to exit when the
    thread that started it dies, which is what keeps it from outliving a crashed proxy.
    """

    def __init__(self, config: EmbeddedRedisConfig) -> None:
        self._config = config
        self._data_dir = config.data_dir.resolve()  # redis-server chdirs to --dir: keep every path absolute
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of the running server.

        Raises:
            EmbeddedRedisError: the server is not running.
        """
        if self._proc is None or self._port is None:
            raise EmbeddedRedisError("The embedded Redis is not running: call start() first.")
        return f"redis://{_HOST}:{self._port}/0"

    @property
    def pid(self) -> int | None:
        """The server's pid while started, else None."""
        return None if self._proc is None else self._proc.pid

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self._data_dir / "redis.log"

    def start(self) -> str:
        """Start the server, wait until it answers PING and return its URL.

        Raises:
            EmbeddedRedisError: files are missing, the server would not start, or it did not answer in time.
        """
        if self._proc is not None:
            raise EmbeddedRedisError("The embedded Redis is already running: call stop() before starting it again.")
        install = find_redis_stack(self._config.server_path)
        install_openssl(self._data_dir / "lib")
        for attempt in range(1, _PORT_TRIES + 1):
            port = self._config.port or _free_port()
            try:
                self._proc = self._launch(install, port)
            except _PortInUseError:
                # An auto-picked port can be taken between our probe and the server's bind: pick again.
                if self._config.port is not None or attempt == _PORT_TRIES:
                    raise
                logger.info("embedded redis: port %s was taken meanwhile, trying another", port)
                continue
            self._port = port
            break
        logger.info("embedded redis started: port=%s pid=%s data_dir=%s", self._port, self.pid, self._data_dir)
        return self.url

    def stop(self) -> None:
        """Stop the server: SIGTERM by pid, a bounded wait, then SIGKILL. Safe to call more than once."""
        proc, self._proc, self._port = self._proc, None, None
        if proc is None:
            return
        code = _terminate(proc)
        logger.info("embedded redis stopped: pid=%s exit_code=%s", proc.pid, code)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _launch(self, install: RedisStackFiles, port: int) -> subprocess.Popen[bytes]:
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        proc = _spawn(_server_args(install, self._config, self._data_dir, port), self._data_dir, self.log_path)
        try:
            _wait_ready(proc, port, self._config.startup_timeout_s, lambda: _log_tail(self.log_path, log_start))
        except BaseException:
            _terminate(proc)
            raise
        return proc


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _server_args(install: RedisStackFiles, config: EmbeddedRedisConfig, data_dir: Path, port: int) -> list[str]:
    args = [str(install.server), "--bind", _HOST, "--port", str(port), "--dir", str(data_dir)]
    args += ["--daemonize", "no", "--protected-mode", "yes", "--logfile", str(data_dir / "redis.log")]
    args += ["--appendonly", "no", "--save", _PERSIST_SAVE if config.persist else ""]
    for module in install.modules:
        args += ["--loadmodule", str(module)]
    return args


def _spawn(args: list[str], data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    lib_dir = str(data_dir / "lib")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, (lib_dir, env.get("LD_LIBRARY_PATH"))))
    try:
        # stderr goes to the log too: loader errors (a missing .so) happen before redis opens its logfile.
        with log_path.open("ab") as log:
            return subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, preexec_fn=_parent_death_hook()
            )
    except OSError as exc:
        raise EmbeddedRedisError(f"Could not run {args[0]}: {exc}. {FIX_HINT}") from exc


def _parent_death_hook() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the child when we die; None where that is unavailable."""
    # The signal fires when the *thread* that forked exits, so a worker thread would kill the server early.
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child should not load libraries
    except (ImportError, OSError, AttributeError):
        return None
    parent = os.getpid()
    option, sig = ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM)

    def arm() -> None:
        prctl(option, sig)
        if os.getppid() != parent:  # we died before prctl took effect: nobody is left to stop the server
            os._exit(1)

    return arm


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float, log_tail: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _exit_error(proc.returncode, port, log_tail())
        if _serves(port, proc.pid):
            return
        time.sleep(_POLL_INTERVAL_S)
    raise EmbeddedRedisError(
        f"redis-server (pid {proc.pid}) did not answer PING on {_HOST}:{port} within {timeout_s}s. "
        f"Raise startup_timeout_s if this machine is slow, or see the log:\n{log_tail()}"
    )


def _exit_error(code: int, port: int, log_tail: str) -> EmbeddedRedisError:
    if "Address already in use" in log_tail:
        return _PortInUseError(f"Port {port} is already in use: choose another port or leave it unset.\n{log_tail}")
    return EmbeddedRedisError(
        f"redis-server exited with code {code} while starting. Fix the cause in its log below. {FIX_HINT}\n{log_tail}"
    )


def _serves(port: int, pid: int) -> bool:
    """Whether our server answers PING on the port (not some other server that grabbed it)."""
    try:
        with socket.create_connection((_HOST, port), timeout=_SOCKET_TIMEOUT_S) as sock:
            if _query(sock, _PING) != b"+PONG":
                return False  # -LOADING: still reading its snapshot
            return f"process_id:{pid}\r\n".encode() in _query(sock, _INFO_SERVER)
    except (OSError, ValueError):
        return False


def _query(sock: socket.socket, command: bytes) -> bytes:
    """Send one RESP command; return a status/error line as is, or a bulk string's payload."""
    sock.sendall(command)
    buffer = b""
    while b"\r\n" not in buffer:
        buffer += _receive(sock)
    header, _, rest = buffer.partition(b"\r\n")
    if not header.startswith(b"$"):
        return header
    size = int(header[1:])
    while len(rest) < size + 2:
        rest += _receive(sock)
    return rest[: max(size, 0)]


def _receive(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("redis-server closed the connection")
    return chunk


def _log_tail(log_path: Path, start: int) -> str:
    """The last lines this launch wrote to the log."""
    try:
        with log_path.open("rb") as log:
            log.seek(start)
            text = log.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {log_path}: {exc})"
    return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])


def _terminate(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, bounded wait, SIGKILL; always reaps the child so its pid is released."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # by pid; Popen skips the signal once the child is reaped
        try:
            return proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning("embedded redis pid=%s ignored SIGTERM for %ss: killing it", proc.pid, _STOP_TIMEOUT_S)
            proc.kill()
    return proc.wait()
