"""The embedded Redis Stack: real redis-server processes on loopback ports, no mocks."""

from __future__ import annotations

import os
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.commands.search.query import Query

from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig, EmbeddedRedisError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path_factory.mktemp("redis"))) as embedded:
        yield embedded


@pytest.fixture
def client(server: EmbeddedRedis) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(server.url, decode_responses=True) as connection:
        yield connection


def is_alive(pid: int) -> bool:
    """Whether pid names a live process (a zombie waiting for a reaper counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat_line = Path(f"/proc/{pid}/stat").read_text()
    return stat_line.rpartition(")")[2].split()[0] != "Z"


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_start_returns_a_loopback_url(server: EmbeddedRedis) -> None:
    assert server.url.startswith("redis://127.0.0.1:")
    assert server.url.endswith("/0")
    assert server.pid is not None and is_alive(server.pid)


def test_stack_modules_are_loaded(client: redis.Redis) -> None:
    names = {module["name"] for module in client.module_list()}
    assert {"search", "timeseries", "ReJSON", "bf"} <= names


def test_vector_index_answers_knn_queries(server: EmbeddedRedis) -> None:
    with redis.Redis.from_url(server.url) as raw:
        schema = ["SCHEMA", "v", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", "4", "DISTANCE_METRIC", "COSINE"]
        assert raw.execute_command("FT.CREATE", "idx", "ON", "HASH", "PREFIX", "1", "doc:", *schema) == b"OK"
        raw.hset("doc:1", "v", struct.pack("4f", 1.0, 0.0, 0.0, 0.0))
        raw.hset("doc:2", "v", struct.pack("4f", 0.0, 1.0, 0.0, 0.0))
        knn = Query("*=>[KNN 1 @v $q]").return_fields("id").dialect(2)
        result = raw.ft("idx").search(knn, query_params={"q": struct.pack("4f", 0.9, 0.1, 0.0, 0.0)})
    assert [document.id for document in result.docs] == ["doc:1"]


def test_timeseries_and_json_commands_work(client: redis.Redis) -> None:
    assert client.execute_command("TS.ADD", "ts", 1000, 2.5) == 1000
    assert client.execute_command("TS.GET", "ts") == [1000, 2.5]
    assert client.execute_command("JSON.SET", "doc", "$", '{"a": 1}') == "OK"
    assert client.execute_command("JSON.GET", "doc", "$.a") == "[1]"


def test_stop_ends_the_process_and_frees_the_port(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path))
    port = port_of(embedded.start())
    pid = embedded.pid
    assert pid is not None

    embedded.stop()

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert refuses_connections(port)
    assert embedded.pid is None
    with pytest.raises(EmbeddedRedisError):
        _ = embedded.url


def test_stop_twice_and_before_start_is_fine(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path))
    embedded.stop()
    embedded.start()
    embedded.stop()
    embedded.stop()


def test_two_instances_run_side_by_side(tmp_path: Path) -> None:
    with (
        EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path / "a")) as first,
        EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path / "b")) as second,
    ):
        assert first.url != second.url
        with redis.Redis.from_url(first.url) as a, redis.Redis.from_url(second.url) as b:
            a.set("who", "first")
            b.set("who", "second")
            assert (a.get("who"), b.get("who")) == (b"first", b"second")


def test_persist_keeps_keys_across_restart_via_shutdown_save(tmp_path: Path) -> None:
    config = EmbeddedRedisConfig(data_dir=tmp_path, persist=True)
    with EmbeddedRedis(config) as embedded, redis.Redis.from_url(embedded.url) as connection:
        connection.set("kept", "yes")  # no SAVE: SIGTERM with save points configured writes the snapshot
    assert (tmp_path / "dump.rdb").is_file()

    with EmbeddedRedis(config) as embedded, redis.Redis.from_url(embedded.url) as connection:
        assert connection.get("kept") == b"yes"


def test_without_persist_nothing_is_written_or_kept(tmp_path: Path) -> None:
    config = EmbeddedRedisConfig(data_dir=tmp_path)
    with EmbeddedRedis(config) as embedded, redis.Redis.from_url(embedded.url, decode_responses=True) as connection:
        assert connection.config_get("save") == {"save": ""}
        connection.set("gone", "yes")
    assert not (tmp_path / "dump.rdb").exists()

    with EmbeddedRedis(config) as embedded, redis.Redis.from_url(embedded.url) as connection:
        assert connection.get("gone") is None


def test_context_manager_stops_the_server(tmp_path: Path) -> None:
    with EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path)) as embedded:
        pid, port = embedded.pid, port_of(embedded.url)
        with redis.Redis.from_url(embedded.url) as connection:
            assert connection.ping()
    assert pid is not None and not is_alive(pid)
    assert refuses_connections(port)


def test_openssl_copies_are_kept_under_both_names(tmp_path: Path) -> None:
    with EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path)):
        pass
    names = sorted(path.name for path in (tmp_path / "lib").iterdir())
    assert names[0].startswith("libcrypto-") and names[1:] == ["libcrypto.so.1.1", "libssl.so.1.1"]


def test_bogus_server_path_names_the_fix(tmp_path: Path) -> None:
    config = EmbeddedRedisConfig(data_dir=tmp_path, server_path=tmp_path / "no-such-redis-server")
    with pytest.raises(EmbeddedRedisError, match="LLMPROXY_REDIS__URL"):
        EmbeddedRedis(config).start()


def test_server_that_exits_early_reports_its_log(tmp_path: Path) -> None:
    script = tmp_path / "broken-redis-server"
    script.write_text("#!/bin/sh\necho 'fatal: something is broken'\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    config = EmbeddedRedisConfig(data_dir=tmp_path, server_path=script)
    with pytest.raises(EmbeddedRedisError, match=r"(?s)exited with code 3.*fatal: something is broken"):
        EmbeddedRedis(config).start()


def test_taken_port_is_reported(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        config = EmbeddedRedisConfig(data_dir=tmp_path, port=holder.getsockname()[1])
        with pytest.raises(EmbeddedRedisError, match="already in use"):
            EmbeddedRedis(config).start()


def test_startup_timeout_raises_and_stops_the_process(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = EmbeddedRedisConfig(data_dir=tmp_path, port=port, startup_timeout_s=0)
    embedded = EmbeddedRedis(config)
    with pytest.raises(EmbeddedRedisError, match="startup_timeout_s"):
        embedded.start()
    assert embedded.pid is None
    assert refuses_connections(port)


def test_server_dies_with_a_crashed_parent(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig\n"
        "embedded = EmbeddedRedis(EmbeddedRedisConfig(data_dir=Path(sys.argv[1])))\n"
        "embedded.start()\n"
        "print(embedded.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert is_alive(pid)
        parent.kill()  # SIGKILL: no cleanup code runs in the parent
    deadline = time.monotonic() + 10
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_alive(pid)
