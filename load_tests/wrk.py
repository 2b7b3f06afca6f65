"""Drive an HTTP endpoint with wrk (Debian package `wrk`) through a generated Lua script; read back JSON results.

The script POSTs the given bodies round-robin, pre-formatted once per thread, or, with `unique`, replaces the
workload.UNIQUE placeholder by a number no other request of any run carries (run tag, thread, counter), so every
request is a different prompt. Its done() hook prints requests, errors and latency percentiles as JSON.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workload import UNIQUE

PERCENTILES = (50, 90, 99)

_PROLOGUE = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end
local prepared = {}
local counter = 0
"""

_FIXED = """
function init(args)
  for i, body in ipairs(bodies) do prepared[i] = wrk.format(nil, nil, nil, body) end
end
function request()
  counter = counter % #prepared + 1
  return prepared[counter]
end
"""

_UNIQUE = """
function request()
  counter = counter + 1
  local number = string.format("%d%d%07d", run_tag, thread_id, counter)
  local body = string.gsub(bodies[counter % #bodies + 1], "PLACEHOLDER", number)
  return wrk.format(nil, nil, nil, body)
end
"""

_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  local parts = {
    string.format('"requests": %d', summary.requests),
    string.format('"duration_us": %d', summary.duration),
    string.format('"errors": %d', e.connect + e.read + e.write + e.timeout),
    string.format('"non_2xx": %d', e.status),
    string.format('"mean_us": %.1f', latency.mean),
    string.format('"max_us": %.1f', latency.max),
  }
  for _, p in ipairs({PERCENTILES}) do
    table.insert(parts, string.format('"p%d_us": %.1f', p, latency:percentile(p)))
  end
  io.write("\\nWRK-JSON " .. "{" .. table.concat(parts, ", ") .. "}\\n")
end
"""


@dataclass(frozen=True, slots=True)
class Load:
    """One wrk run: where, what, how hard."""

    url: str
    bodies: list[str]
    headers: dict[str, str]
    connections: int
    duration_s: float
    unique: bool = False
    threads: int = 2


@dataclass(frozen=True, slots=True)
class Result:
    requests: int
    seconds: float
    errors: int  # socket errors and timeouts
    non_2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    command: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def require_wrk() -> str:
    """The wrk executable. Raises SystemExit with the install hint if it is missing."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is needed: sudo apt-get install wrk")
    return path


def script(load: Load) -> str:
    """The Lua script for one run."""
    bodies = "bodies = {\n" + "".join(f"  {_lua_string(body)},\n" for body in load.bodies) + "}\n"
    headers = "".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}\n" for k, v in load.headers.items())
    run_tag = f"run_tag = {random.randrange(100_000, 999_999)}\n"
    body = (_UNIQUE.replace("PLACEHOLDER", UNIQUE) if load.unique else _FIXED) + _DONE
    percentiles = "{" + ", ".join(str(p) for p in PERCENTILES) + "}"
    return bodies + run_tag + _PROLOGUE + headers + body.replace("{PERCENTILES}", percentiles)


def run(load: Load) -> Result:
    """Run wrk once. Raises RuntimeError when wrk fails or prints no result."""
    threads = max(1, min(load.threads, load.connections))
    with tempfile.TemporaryDirectory(prefix="llmproxy-wrk-") as tmp:
        lua = Path(tmp) / "load.lua"
        lua.write_text(script(load))
        duration = f"{max(1, round(load.duration_s))}s"
        options = ["-t", str(threads), "-c", str(load.connections), "-d", duration, "--timeout", "30s"]
        command = [require_wrk(), *options, "-s", str(lua), load.url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=load.duration_s + 120)
    marker = next((line for line in done.stdout.splitlines() if line.startswith("WRK-JSON ")), None)
    if done.returncode != 0 or marker is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    data = json.loads(marker.removeprefix("WRK-JSON "))
    shown = " ".join(["wrk", *options, "-s", "<generated>.lua", load.url])
    return Result(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        errors=int(data["errors"]),
        non_2xx=int(data["non_2xx"]),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        command=shown,
    )


def _lua_string(value: str) -> str:
    # A JSON string literal is a valid Lua string literal for the ASCII text used here (\" \\ \n \uXXXX aside).
    if any(ord(char) > 126 for char in value):
        raise ValueError("wrk bodies must be ASCII")
    return json.dumps(value)
