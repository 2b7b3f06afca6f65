"""What a benchmark ran on: cores, CPU, load, Python and the versions that decide the numbers."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import llmproxy

PACKAGES = ("uvicorn", "uvloop", "httptools", "starlette", "httpx", "redis", "hiredis", "redisvl", "torch")


def cpu_model() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"


def package_versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def wrk_version() -> str:
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    except FileNotFoundError:
        return "wrk not installed"
    first = (done.stdout or done.stderr or "?").splitlines()[0]
    return first.split(" Copyright")[0]


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def commit() -> str:
    """The checked-out commit of this repository, with `+changes` when the tree differs from it."""
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True)
    return head.stdout.strip() + (" +changes" if dirty.stdout.strip() else "") if head.returncode == 0 else "?"


def facts(redis_version: str) -> dict[str, str]:
    """Name → value, for the header of a results file."""
    return {
        "llmproxy commit": commit(),
        "llmproxy imported from (this process)": str(Path(llmproxy.__file__).parent),
        "cores (nproc)": str(os.cpu_count()),
        "CPU": cpu_model(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "packages": package_versions(),
        "Redis": redis_version,
        "load generator": wrk_version(),
        "load average before the run (1, 5, 15 min)": load_average(),
    }
