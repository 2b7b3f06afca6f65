"""Pair features for the learned decision: pure functions of two prompts and their distance."""

from __future__ import annotations

import pytest

from llmproxy.cache.decision.guards import features
from llmproxy.cache.decision.pair_features import FEATURE_NAMES, pair_features, rarity


def named(a: str, b: str, distance: float = 0.05) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, pair_features(features(a), features(b), distance), strict=True))


def test_one_value_per_named_feature_and_the_distance_first() -> None:
    row = pair_features(features("How do I cook rice?"), features("How can I cook rice?"), 0.07)
    assert len(row) == len(FEATURE_NAMES) and row[0] == 0.07


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How can we program our Dish Network remote?", "How can you program your Dish remote?"),
        ("Is Apple better than Samsung for 2 years?", "Is Samsung better than Apple for 3 years?"),
        ("When did Rome fall?", "Why did the Roman empire fall so fast?"),
    ],
)
def test_features_do_not_depend_on_which_prompt_is_the_query(a: str, b: str) -> None:
    assert named(a, b) == named(b, a)


def test_a_number_clash_and_an_added_number_are_told_apart() -> None:
    clash = named("Lose weight in 2 weeks", "Lose weight in 3 weeks")
    added = named("Best books for NEET 2018?", "Best books for NEET?")
    assert (clash["number_clash"], clash["number_added"]) == (1.0, 0.0)
    assert (added["number_clash"], added["number_added"]) == (0.0, 1.0)


def test_each_guard_sets_its_own_flag() -> None:
    assert named("Is coffee bad for you?", "Is coffee not bad for you?")["negation"] == 1.0
    assert named("Is Apple better than Samsung?", "Is Samsung better than Apple?")["order"] == 1.0
    assert named("Is it cold in Spain?", "Is it cold in Italy?")["name"] == 1.0
    assert named("When did Rome fall?", "Why did Rome fall?")["question"] == 1.0
    assert named("How do I cook rice?", "How can I cook rice?")["name"] == 0.0


def test_a_name_made_of_ordinary_words_is_flagged_as_such() -> None:
    # Frequent names ("Spain") count as ordinary too: word frequencies do not know case; the model weighs it.
    ordinary = named("Where can I buy Green Tea?", "Where can I buy tea?")
    proper = named("Is it cold in Reykjavik?", "Is it cold in Tromso?")
    assert ordinary["name"] == 1.0 and ordinary["name_only_common"] == 1.0
    assert proper["name_only_common"] == 0.0


def test_overlap_and_unmatched_words() -> None:
    same = named("best eyeshadow for blue eyes", "best eyeshadow for blue eyes")
    swapped = named("best eyeshadow for blue eyes", "best eyeshadow for brown eyes")
    assert same["word_jaccard"] == same["content_jaccard"] == same["rare_overlap"] == 1.0
    assert same["unmatched_max"] == same["rarest_unmatched"] == 0.0
    assert (swapped["unmatched_min"], swapped["unmatched_max"], swapped["changed_words"]) == (1.0, 1.0, 1.0)
    assert 0.0 < swapped["rare_overlap"] < 1.0 and swapped["rarest_unmatched"] > 0.0


def test_sharing_a_rare_word_counts_more_than_sharing_a_common_one() -> None:
    rare = named("What is photosynthesis used for today?", "Explain photosynthesis simply")
    common = named("What is time used for today?", "Explain time simply")
    assert rare["content_jaccard"] == common["content_jaccard"]
    assert rare["rare_overlap"] > common["rare_overlap"]


def test_rarity_is_low_for_common_words_and_high_for_unknown_ones() -> None:
    assert rarity("the") < 1.5 < rarity("network") < rarity("narcissist") < rarity("qzxvbn") == 8.0


def test_question_openers_are_one_symmetric_code() -> None:
    how_what = named("How do elephants eat?", "What do elephants eat?")
    what_how = named("What do elephants eat?", "How do elephants eat?")
    same = named("How do elephants eat?", "How do elephants sleep?")
    assert how_what["openers"] == what_how["openers"] != same["openers"]
    assert how_what["same_opening"] == 0.0 and same["same_opening"] == 1.0
