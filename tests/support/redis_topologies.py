"""Real multi-node Redis setups for tests, from the Redis Stack binaries the project ships: a 3-primary +
3-replica cluster, and a primary + replica watched by 3 sentinels. Every process is started here, waited for
with bounded polls, and stopped by its pid."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from llmproxy.store.redis_stack_files import find_redis_stack, install_openssl

START_TIMEOUT_S = 20.0
FAILOVER_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.1  # a poll interval: every wait ends as soon as its condition holds
SENTINEL_SERVICE = "llmproxy-primary"


@dataclass
class Node:
    """One redis-server process of a topology."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def kill(self) -> None:
        """Kill the process at once (a crash, not a shutdown)."""
        self.proc.kill()
        self.proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Cluster:
    """A running Redis Cluster: its nodes (primaries first as created) and any node's URL."""

    nodes: list[Node]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def live(self) -> list[Node]:
        return [node for node in self.nodes if node.alive]

    def primaries(self) -> list[Node]:
        """The live nodes that are primaries now."""
        return [node for node in self.live() if _role(node) == "master"]

    def primary_of(self, key: str) -> Node:
        """The live primary that owns the slot of `key`."""
        for node in self.primaries():
            with node.client() as client:
                slot = int(client.execute_command("CLUSTER KEYSLOT", key))
                if _owns(client, node.port, slot):
                    return node
        raise RuntimeError(f"no live primary owns the slot of {key!r}")

    def keys_per_primary(self, pattern: str) -> dict[int, int]:
        """How many keys matching `pattern` each live primary holds, by port."""
        counts = {}
        for node in self.primaries():
            with node.client() as client:
                counts[node.port] = sum(1 for _ in client.scan_iter(match=pattern, count=1000))
        return counts

    def wait_healthy(self, timeout_s: float = FAILOVER_TIMEOUT_S) -> None:
        """Wait until every live node reports cluster_state:ok and every slot has a live primary."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(_cluster_ok(node) for node in self.live()) and len(self.primaries()) == 3:
                return
            time.sleep(POLL_S)
        raise RuntimeError(f"the cluster did not become healthy within {timeout_s} s")


@dataclass
class SentinelSetup:
    """A primary, its replica, and three sentinels watching them under SENTINEL_SERVICE."""

    data: list[Node]
    sentinels: list[Node]

    @property
    def sentinel_addresses(self) -> list[str]:
        return [node.address for node in self.sentinels]

    def primary(self) -> Node:
        """The data node the sentinels name as primary now."""
        with self.sentinels[0].client() as client:
            host, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE)
        return next(node for node in self.data if node.port == int(port))

    def wait_primary_other_than(self, old: Node, timeout_s: float = FAILOVER_TIMEOUT_S) -> Node:
        """Wait until the sentinels have promoted another node and it accepts writes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError, StopIteration):
                node = self.primary()
                if node is not old and _role(node) == "master":
                    return node
            time.sleep(POLL_S)
        raise RuntimeError(f"the sentinels did not fail over within {timeout_s} s")


@contextlib.contextmanager
def redis_cluster(data_dir: Path) -> Iterator[Cluster]:
    """Six cluster-enabled Redis Stack nodes joined as 3 primaries + 3 replicas; stopped on exit."""
    with _processes() as start:
        nodes = [
            start(data_dir / f"node-{index}", "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
            for index in range(6)
        ]
        cli = find_redis_stack(None).server.with_name("redis-cli")
        addresses = [node.address for node in nodes]
        subprocess.run(
            [str(cli), "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            env=_env(data_dir / "node-0"),
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S * 3,
        )
        cluster = Cluster(nodes)
        cluster.wait_healthy(START_TIMEOUT_S * 2)
        yield cluster


@contextlib.contextmanager
def redis_sentinels(data_dir: Path) -> Iterator[SentinelSetup]:
    """A primary, a replica of it, and three sentinels (quorum 2, 2 s down-after); stopped on exit."""
    with _processes() as start:
        primary = start(data_dir / "primary")
        replica = start(data_dir / "replica", "--replicaof", "127.0.0.1", str(primary.port))
        sentinels = []
        for index in range(3):
            folder = data_dir / f"sentinel-{index}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 2000\n"
                f"sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
                f"sentinel parallel-syncs {SENTINEL_SERVICE} 1\n"
            )
            sentinels.append(start(folder, "--sentinel", config=conf, modules=False))
        setup = SentinelSetup([primary, replica], sentinels)
        _wait_replicated(replica)
        _wait_sentinels_see(setup)
        yield setup


StartNode = Callable[..., Node]


@contextlib.contextmanager
def _processes() -> Iterator[StartNode]:
    started: list[Node] = []

    def start(folder: Path, *options: str, config: Path | None = None, modules: bool = True) -> Node:
        folder.mkdir(parents=True, exist_ok=True)
        files = find_redis_stack(None)
        install_openssl(folder / "lib")
        port = _cluster_port()
        args = [str(files.server), *([str(config)] if config else [])]
        args += ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
        for module in files.modules if modules else ():
            args += ["--loadmodule", str(module)]
        with (folder / "redis.log").open("ab") as log:  # loader errors come before redis opens a logfile
            proc = subprocess.Popen([*args, *options], cwd=folder, env=_env(folder), stdout=log, stderr=log)
        node = Node(port, proc)
        started.append(node)
        _wait_ping(node)
        return node

    try:
        yield start
    finally:
        for node in started:
            _stop(node)


def _cluster_port() -> int:
    """A free port whose cluster bus port (10000 higher) is free too; Redis refuses ports above 55535."""
    for _ in range(200):
        port = random.randint(20_000, 45_000)
        if _bindable(port) and _bindable(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _env(folder: Path) -> dict[str, str]:
    return {**os.environ, "LD_LIBRARY_PATH": str(folder / "lib")}


def _stop(node: Node) -> None:
    if not node.alive:
        return
    node.proc.terminate()  # by pid: only what this helper started
    try:
        node.proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        node.proc.kill()
        node.proc.wait()


def _wait_ping(node: Node) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not node.alive:
            raise RuntimeError(f"redis-server on port {node.port} exited with code {node.proc.returncode}")
        with contextlib.suppress(redis.RedisError), node.client() as client:
            if client.ping():
                return
        time.sleep(POLL_S)
    raise RuntimeError(f"redis-server on port {node.port} did not answer PING within {START_TIMEOUT_S} s")


def _role(node: Node) -> str:
    try:
        with node.client() as client:
            role = client.execute_command("ROLE")
    except redis.RedisError:
        return "down"
    name = role[0]
    return name.decode() if isinstance(name, bytes) else str(name)


def _cluster_ok(node: Node) -> bool:
    try:
        with node.client() as client:
            info = client.cluster("INFO")
    except redis.RedisError:
        return False
    return str(info.get("cluster_state")) == "ok"


def _owns(client: redis.Redis, port: int, slot: int) -> bool:
    for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
        if start <= slot <= end:
            return int(primary[1]) == port
    return False


def _wait_replicated(replica: Node) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError), replica.client() as client:
            if client.info("replication").get("master_link_status") == "up":
                return
        time.sleep(POLL_S)
    raise RuntimeError("the replica did not sync with its primary in time")


def _wait_sentinels_see(setup: SentinelSetup) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        seen = 0
        for sentinel in setup.sentinels:
            with contextlib.suppress(redis.RedisError), sentinel.client() as client:
                info = client.execute_command("SENTINEL", "MASTER", SENTINEL_SERVICE)
                fields = dict(zip(info[::2], info[1::2], strict=False)) if isinstance(info, list) else info
                replicas = int(fields.get(b"num-slaves", fields.get("num-slaves", 0)))
                others = int(fields.get(b"num-other-sentinels", fields.get("num-other-sentinels", 0)))
                seen += replicas >= 1 and others >= 2
        if seen == len(setup.sentinels):
            return
        time.sleep(POLL_S)
    raise RuntimeError("the sentinels did not discover the replica and each other in time")
