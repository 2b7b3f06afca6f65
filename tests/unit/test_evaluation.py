"""eval-pairs arithmetic and input handling: metrics from hand-made decisions, JSONL errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmproxy.cache.decision.evaluation import (
    LabelledPair,
    PairFileError,
    Scores,
    parse_pair,
    parse_sweep,
    read_pairs,
    score,
    score_by_source,
)


def test_confusion_counts_from_decisions_and_labels() -> None:
    hits = [True, True, True, False, False, False, False]
    same = [True, True, False, True, False, False, False]
    assert score(hits, same) == Scores(tp=2, fp=1, tn=3, fn=1)


def test_rates_from_counts() -> None:
    scores = Scores(tp=6, fp=2, tn=8, fn=4)
    assert scores.precision == pytest.approx(0.75)
    assert scores.recall == pytest.approx(0.6)
    assert scores.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert scores.false_positive_rate == pytest.approx(0.2)
    assert scores.hit_rate == pytest.approx(0.4)


def test_rates_with_nothing_to_divide_are_zero() -> None:
    scores = Scores(tp=0, fp=0, tn=0, fn=0)
    assert (scores.precision, scores.recall, scores.f1, scores.false_positive_rate, scores.hit_rate) == (0, 0, 0, 0, 0)


def test_figures_round_rates_and_keep_counts() -> None:
    assert Scores(tp=1, fp=2, tn=3, fn=0).figures() == {
        "precision": 0.3333,
        "recall": 1.0,
        "f1": 0.5,
        "false_positive_rate": 0.4,
        "hit_rate": 0.5,
        "tp": 1,
        "fp": 2,
        "tn": 3,
        "fn": 0,
    }


def test_scores_by_source() -> None:
    pairs = [
        LabelledPair("a", "b", True, "x"),
        LabelledPair("c", "d", False, "x"),
        LabelledPair("e", "f", True, "y"),
        LabelledPair("g", "h", True),
    ]
    by_source = score_by_source(pairs, [True, True, False, True])
    assert by_source == {"x": Scores(tp=1, fp=1, tn=0, fn=0), "y": Scores(tp=0, fp=0, tn=0, fn=1)}


def test_a_pair_line_with_extra_keys() -> None:
    line = '{"a": "Is it hot?", "b": "Is it warm?", "same": true, "source": "mine", "score": 4.2}'
    assert parse_pair(line, "f:1") == LabelledPair("Is it hot?", "Is it warm?", True, "mine")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"a": "x", "b": "y"', "not JSON"),
        ('["x", "y", true]', "expected an object"),
        ('{"a": "x", "same": true}', "'a' and 'b' must be non-empty strings"),
        ('{"a": "x", "b": " ", "same": true}', "'a' and 'b' must be non-empty strings"),
        ('{"a": "x", "b": "y", "same": "yes"}', "'same' must be true or false"),
        ('{"a": "x", "b": "y", "same": 1}', "'same' must be true or false"),
    ],
)
def test_a_bad_line_is_an_error_naming_the_line(line: str, problem: str) -> None:
    with pytest.raises(PairFileError, match=f"^pairs.jsonl:7: {problem}"):
        parse_pair(line, "pairs.jsonl:7")


def test_reading_a_file_skips_blank_lines_and_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"a": "x", "b": "y", "same": true}\n\n{"a": "x"}\n', encoding="utf-8")
    with pytest.raises(PairFileError, match=r"pairs.jsonl:3: 'a' and 'b'"):
        read_pairs(path)
    assert read_pairs(path, limit=1) == [LabelledPair("x", "y", True)]


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PairFileError, match="cannot read"):
        read_pairs(tmp_path / "absent.jsonl")


def test_sweep_specs() -> None:
    assert parse_sweep("0.02:0.10:0.02") == [0.02, 0.04, 0.06, 0.08, 0.1]
    assert parse_sweep("0.1:0.1:0.05") == [0.1]
    for bad in ("0.1:0.3", "a:b:c", "0.3:0.1:0.1", "0:1:0", "0:1:0.001", "-0.1:0.2:0.1"):
        with pytest.raises(ValueError, match="sweep"):
            parse_sweep(bad)
