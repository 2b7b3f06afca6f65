"""`llmproxy eval-pairs` as an operator runs it: a real process, the real embedding model, a small pairs file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmproxy.settings import SemanticSettings

# (source, a, b, same): each pair has its own source, so the per-source figures show how each was decided.
PAIRS = [
    ("paraphrase", "How do I get rid of hiccups quickly?", "What is the fastest way to stop hiccups?", True),
    ("contraction", "What's the tallest mountain in Africa?", "What is the tallest mountain in Africa?", True),
    ("number", "How long does it take to hard boil 2 eggs?", "How long does it take to hard boil 6 eggs?", False),
    ("negation", "Is it safe to swim after eating?", "Is it not safe to swim after eating?", False),
    ("order", "Is a cheetah faster than a lion?", "Is a lion faster than a cheetah?", False),
    ("unrelated", "How do I repair a flat bicycle tyre?", "What is the population of Canada?", False),
]
FIGURES = {"precision", "recall", "f1", "false_positive_rate", "hit_rate", "tp", "fp", "tn", "fn"}


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps({"a": a, "b": b, "same": same, "source": source}) for source, a, b, same in PAIRS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def eval_pairs(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No LLMPROXY_* variables and no config/ in the working directory: the code defaults apply.
    env = {name: value for name, value in os.environ.items() if not name.startswith("LLMPROXY_")}
    command = [sys.executable, "-m", "llmproxy", "eval-pairs", *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110)


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    last: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return last


def test_default_policy_serves_paraphrases_and_refuses_changed_meaning(tmp_path: Path, pairs_file: Path) -> None:
    result = eval_pairs(tmp_path, str(pairs_file))
    figures = summary(result)
    assert FIGURES | {"threshold", "guards", "pairs", "by_source"} <= figures.keys()
    assert figures["threshold"] == SemanticSettings().threshold and figures["guards"] is True
    assert (figures["pairs"], figures["tp"], figures["fp"], figures["tn"], figures["fn"]) == (6, 2, 0, 4, 0)
    assert figures["precision"] == 1.0 and figures["recall"] == 1.0 and figures["false_positive_rate"] == 0.0
    assert figures["by_source"]["number"]["tn"] == 1
    assert "embedded 12/12 prompts" in result.stderr
    assert "raw cosine" in result.stdout


def test_without_guards_a_changed_number_is_served(tmp_path: Path, pairs_file: Path) -> None:
    figures = summary(eval_pairs(tmp_path, str(pairs_file), "--no-guards", "--threshold", "0.2"))
    assert (figures["threshold"], figures["guards"]) == (0.2, False)
    assert figures["by_source"]["number"]["fp"] == 1
    assert figures["by_source"]["unrelated"]["tn"] == 1
    assert figures["precision"] < 1.0


def test_sweep_reports_each_threshold_with_and_without_guards(tmp_path: Path, pairs_file: Path) -> None:
    result = eval_pairs(tmp_path, str(pairs_file), "--sweep", "0.05:0.15:0.05", "--limit", "3")
    rows = summary(result)["sweep"]
    assert [(row["threshold"], row["guards"]) for row in rows] == [
        (0.05, False),
        (0.05, True),
        (0.1, False),
        (0.1, True),
        (0.15, False),
        (0.15, True),
    ]
    assert all(FIGURES <= row.keys() and row["tp"] + row["fp"] + row["tn"] + row["fn"] == 3 for row in rows)


def test_a_bad_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"a": "x", "b": "y", "same": true}\n{"a": "x", "b": "y", "same": "maybe"}\n', encoding="utf-8")
    result = eval_pairs(tmp_path, str(path))
    assert result.returncode == 2
    assert f"{path}:2: 'same' must be true or false" in result.stderr


def test_learned_decision_reports_per_source_and_natural_figures(tmp_path: Path, pairs_file: Path) -> None:
    result = eval_pairs(tmp_path, str(pairs_file), "--decision", "learned")
    figures = summary(result)
    assert figures["decision"] == "learned"
    assert figures["by_source"]["negation"]["tn"] == 1 and figures["by_source"]["order"]["tn"] == 1
    assert figures["fp"] == 0 and figures["natural"]["fp"] == 0
    assert "decision learned" in result.stdout and "natural (all but hard negatives)" in result.stdout


def test_rules_decision_is_measured_on_request(tmp_path: Path, pairs_file: Path) -> None:
    figures = summary(eval_pairs(tmp_path, str(pairs_file), "--decision", "rules"))
    assert figures["decision"] == "rules" and figures["guards"] is True
    assert (figures["tp"], figures["fp"]) == (2, 0)
