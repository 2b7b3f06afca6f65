"""The learned decision's model file: it loads offline, evaluates in pure Python, and decides known pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmproxy.cache.decision.learned import DEFAULT_MODEL_FILE, FORMAT, LearnedModelError, Tree, load_learned_model
from llmproxy.cache.decision.pair_features import FEATURE_NAMES
from llmproxy.cache.decision.policy import Policy, Verdict, decide, load_policy_model

MODEL = load_learned_model()
LEARNED = Policy(threshold=0.16, guards=True, learned=MODEL)


def test_the_shipped_model_is_small_licence_clean_and_describes_its_training() -> None:
    assert DEFAULT_MODEL_FILE.stat().st_size < 100_000
    assert MODEL.max_distance == 0.16 and 0.5 < MODEL.threshold < 1.0
    assert "CV precision" in MODEL.description and "QQP held out" in MODEL.description
    assert "CC BY-SA 4.0" in MODEL.description and (DEFAULT_MODEL_FILE.parent / "DECISION_MODEL_LICENSE.md").is_file()


@pytest.mark.parametrize(
    ("query", "candidate", "distance"),
    [
        ("How do I talk English fluently?", "What are the best ways to speak English fluently?", 0.090),
        ("What causes airline delays?", "What are the top causes of flight delays?", 0.096),
        ("What is the best method of losing weight?", "Which are the best ways to lose weight?", 0.096),
    ],
)
def test_known_paraphrases_are_hits(query: str, candidate: str, distance: float) -> None:
    assert decide(query, candidate, distance, LEARNED) == Verdict(True, "hit")


@pytest.mark.parametrize(
    ("query", "candidate", "distance"),
    [
        ("Is coffee bad for you?", "Is coffee not bad for you?", 0.01),
        ("Is it cold in Spain in winter?", "Is it cold in Italy in winter?", 0.03),
    ],
)
def test_known_different_questions_are_misses(query: str, candidate: str, distance: float) -> None:
    verdict = decide(query, candidate, distance, LEARNED)
    assert not verdict.hit and verdict.reason.startswith("learned: ")


def test_the_licence_clean_model_serves_a_question_focus_change_as_the_rules_do() -> None:
    # Known weakness: only QQP (now evaluation-only) taught the model "when" vs "how"; rules is the default.
    pair = ("When will game of thrones end?", "How will Game of Thrones end?", 0.062)
    assert decide(*pair, Policy(0.16, guards=True)).hit and decide(*pair, LEARNED).hit


def test_beyond_the_threshold_or_the_models_bound_nothing_is_served() -> None:
    paraphrase = ("What causes airline delays?", "What are the top causes of flight delays?")
    assert decide(*paraphrase, 0.15, Policy(0.10, guards=True, learned=MODEL)) == Verdict(
        False, "distance 0.150 > 0.100"
    )
    assert decide(*paraphrase, 0.20, Policy(0.25, guards=True, learned=MODEL)).reason == "distance 0.200 > 0.160"


def test_policies_name_their_decision() -> None:
    assert LEARNED.decision == "learned" and Policy(0.16, guards=True).decision == "rules"
    assert load_policy_model("rules") is None and load_policy_model("learned") == MODEL


def test_a_tree_walks_from_the_root_to_a_leaf() -> None:
    # feature 0 <= 0.1 ? (feature 1 <= 0.5 ? leaf 0 : leaf 1) : leaf 2
    tree = Tree(feature=(0, 1), threshold=(0.1, 0.5), left=(1, ~0), right=(~2, ~1), leaves=(-1.0, 2.0, 3.0))
    assert [tree.value((0.05, 0.2)), tree.value((0.05, 0.9)), tree.value((0.3, 0.0))] == [-1.0, 2.0, 3.0]


def write_model(tmp_path: Path, **changes: object) -> Path:
    document = json.loads(DEFAULT_MODEL_FILE.read_text()) | changes
    path = tmp_path / "model.json"
    path.write_text(json.dumps(document))
    return path


def test_a_model_with_trees_adds_them_to_the_logit(tmp_path: Path) -> None:
    zeros = [0.0] * len(FEATURE_NAMES)
    stump = {"feature": [0], "threshold": [0.1], "left": [-1], "right": [-2], "leaves": [2.0, -2.0]}
    model = load_learned_model(write_model(tmp_path, bias=0.0, weights=zeros, trees=[stump]))
    row = (0.05,) + (0.0,) * (len(FEATURE_NAMES) - 1)
    assert model.probability(row) == pytest.approx(1 / (1 + 2.718281828459045**-2.0))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "other"}, f"not a {FORMAT} model file"),
        ({"features": ["distance"]}, "trained on other features"),
        ({"weights": [1.0]}, "1 weights for"),
        ({"trees": [{"feature": [0], "threshold": [0.1], "left": [0], "right": [-1], "leaves": [1.0]}]}, "back up"),
        ({"trees": [{"feature": [99], "threshold": [0.1], "left": [-1], "right": [-1], "leaves": [1.0]}]}, "unknown"),
    ],
)
def test_a_broken_model_file_is_refused_with_the_reason(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(LearnedModelError, match=message):
        load_learned_model(write_model(tmp_path, **changes))


def test_a_missing_model_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LearnedModelError, match="cannot load"):
        load_learned_model(tmp_path / "absent.json")
