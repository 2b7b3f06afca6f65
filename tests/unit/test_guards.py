"""False-positive guards: each catches its kind of difference and lets paraphrases through."""

from __future__ import annotations

import pytest

from llmproxy.cache.decision.features import PromptFeatures, related, stem
from llmproxy.cache.decision.guards import (
    changed_words,
    features,
    first_difference,
    name_difference,
    negation_difference,
    number_difference,
    opposite_difference,
    order_difference,
    question_difference,
    unit_difference,
)


def pair(a: str, b: str) -> tuple[PromptFeatures, PromptFeatures]:
    return features(a), features(b)


PARAPHRASES = [
    ("How do you diagnose a narcissist?", "How can you diagnose a narcissist?"),
    ("What's the capital of France?", "What is France's capital city?"),
    ("What's the capital of France?", "What is France's capital?"),
    ("How do I learn to play the guitar?", "How can I learn playing guitar?"),
    (
        "What is the difference between a crocodile and an alligator?",
        "What's the difference between alligators and crocodiles?",
    ),
    ("Can I lose 2 kg in one week?", "Can I lose two kg in 1 week?"),
    ("How can one improve their handwriting?", "How do I improve my handwriting?"),
    ("Which one is the best laptop for students?", "Which is the best laptop for students?"),
    ("Should I buy a used car or lease one?", "Should I buy a used car or lease one or not?"),
    ("What is your favourite colour?", "What is your favorite colour?"),
    ("Is Python or Java better for beginners?", "Is Java or Python better for beginners?"),
    ("Can you explain what photosynthesis is?", "What is photosynthesis?"),
]


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_paraphrases_pass_every_guard(a: str, b: str) -> None:
    assert first_difference(a, b) is None


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        (
            "How far is Paris from Lyon by train in 2 hours?",
            "How far is Paris from Lyon by train in 3 hours?",
            "2 vs 3",
        ),
        ("Is 3.5 bigger than 3.50?", "Is 3.5 bigger than 3.6?", "none vs 3.6"),
        ("What happened in the second world war?", "What happened in the first world war?", "2 vs 1"),
        ("Can I save 10k a year?", "Can I save 20,000 a year?", "10000 vs 20000"),
        ("How do I get a visa in three weeks?", "How do I get a visa in 4 weeks?", "3 vs 4"),
        ("Where can I buy a 27 inch monitor?", "Where can I buy a monitor?", "27 vs none"),
        ("What is fifty five squared?", "What is 54 squared?", "55 vs 54"),
    ],
)
def test_different_numbers_are_told_apart(a: str, b: str, reason: str) -> None:
    assert number_difference(*pair(a, b)) == f"number {reason}"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What happens in 2 days?", "What happens in two days?"),
        ("Is it my 3rd attempt?", "Is it my third attempt?"),
        ("How much is 1,500 euros in dollars?", "How much is 1500 euros in dollars?"),
        ("Can I learn it in a day?", "Can I learn it in 1 day?"),
        ("Which one should I pick?", "Which should I pick?"),
        ("What does $5 million buy?", "What does $5000000 buy?"),
    ],
)
def test_one_number_written_two_ways_is_the_same(a: str, b: str) -> None:
    assert number_difference(*pair(a, b)) is None


def test_units_of_one_kind_are_told_apart() -> None:
    assert unit_difference(*pair("Lose weight in 2 weeks", "Lose weight in 2 months")) == "unit week vs month"
    assert unit_difference(*pair("Is 5 km a long run?", "Is 5 miles a long run?")) == "unit km vs mile"


def test_units_of_different_kinds_or_missing_units_pass() -> None:
    assert unit_difference(*pair("Cost of 5 kg of rice in dollars", "Cost of 5 kg of rice")) is None
    assert unit_difference(*pair("Run 5 km in an hour", "Run 5 km in 60 minutes")) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Is coffee bad for you?", "Is coffee not bad for you?"),
        ("Why can I sleep at night?", "Why can't I sleep at night?"),
        ("How to travel with a passport?", "How to travel without a passport?"),
        (
            "Is it possible to not have mental illness and be sane?",
            "Is it possible to have mental illness and not be sane?",
        ),
    ],
)
def test_a_negation_in_one_prompt_only_or_moved_is_told_apart(a: str, b: str) -> None:
    assert negation_difference(*pair(a, b)) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Why don't cats like water?", "Why do cats not like water?"),
        ("How do I know if she likes me?", "How do I know if she likes me or not?"),
        ("Is it worth it? If not, what should I do?", "Is it worth it? What else should I do?"),
    ],
)
def test_the_same_negation_or_an_idiom_passes(a: str, b: str) -> None:
    assert negation_difference(*pair(a, b)) is None


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("Is it cold in Spain in winter?", "Is it cold in Italy in winter?", "spain vs italy"),
        (
            "Best eyeshadow for blue eyes by Maybelline?",
            "Best eyeshadow for blue eyes by Revlon?",
            "maybelline vs revlon",
        ),
        ("How do I apply for a job at NASA?", "How do I apply for a job at ESA?", "nasa vs esa"),
        ("Where should I travel in june?", "Where should I travel in December?", "june vs december"),
        (
            "What is the best place to visit in December?",
            "What is the best place to visit in December in India?",
            "none vs india",
        ),
    ],
)
def test_a_name_only_one_prompt_mentions_is_told_apart(a: str, b: str, reason: str) -> None:
    assert name_difference(*pair(a, b)) == f"name {reason}"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Which is the best beach in goa?", "Which is the best beach in GOA?"),
        ("Why do Indian people love cricket?", "Why do people in India love cricket?"),
        ("Paris is lovely. Where should I stay?", "Where should I stay in Paris? It is lovely."),
        ("UK Girl And Grandad Named After Crash", "The girl and grandad named after crash in the UK"),
    ],
)
def test_names_in_any_case_or_form_pass(a: str, b: str) -> None:
    assert name_difference(*pair(a, b)) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Is Apple better than Samsung?", "Is Samsung better than Apple?"),
        ("How do I convert ethanol to ethanoic acid?", "How do I convert ethanoic acid to ethanol?"),
        ("Do Indian women find Pakistani men attractive?", "Do Pakistani women find Indian men attractive?"),
        ("A man is carrying a canoe with a dog.", "A dog is carrying a man in a canoe."),
    ],
)
def test_swapped_roles_are_told_apart(a: str, b: str) -> None:
    assert order_difference(*pair(a, b)) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "What is the difference between real gas and ideal gas?",
            "What is the difference between ideal gas and real gas?",
        ),
        ("Marvel vs DC: which is better?", "DC vs Marvel: which is better?"),
        ("Which is better, tea or coffee?", "Which is better, coffee or tea?"),
        ("What's the capital of France?", "What is France's capital?"),
    ],
)
def test_symmetric_or_restructured_orders_pass(a: str, b: str) -> None:
    assert order_difference(*pair(a, b)) is None


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("Why did the shares close higher?", "Why did the shares close lower?", "higher vs lower"),
        (
            "What are the advantages of solar panels?",
            "What are the disadvantages of solar panels?",
            "advantages vs disadvantages",
        ),
        ("Should I buy gold now?", "Should I sell gold now?", "buy vs sell"),
        ("Are sheer tops fine for women?", "Are sheer tops fine for men and women?", "none vs men"),
    ],
)
def test_opposite_words_are_told_apart(a: str, b: str, reason: str) -> None:
    difference = opposite_difference(*pair(a, b))
    assert difference is not None and difference.startswith("opposite")
    assert set(reason.split(" vs ")) - {"none"} <= set(difference.removeprefix("opposite ").split(" vs "))


def test_words_without_opposites_pass() -> None:
    assert opposite_difference(*pair("Why did the shares close higher?", "Why did the stocks close higher?")) is None


def test_different_specific_questions_are_told_apart() -> None:
    assert question_difference(*pair("When did Rome fall?", "Why did Rome fall?")) == "question when vs why"
    assert question_difference(*pair("Who built the pyramids?", "Where were the pyramids built?")) is not None
    assert question_difference(*pair("How many moons has Mars?", "Why has Mars moons?")) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I learn integration?", "What is the best way to learn integration?"),
        ("Is it safe to eat raw eggs?", "How safe is it to eat raw eggs?"),
        ("Why is the sky blue?", "Can you explain why the sky is blue?"),
    ],
)
def test_open_and_yes_no_forms_of_one_question_pass(a: str, b: str) -> None:
    assert question_difference(*pair(a, b)) is None


def test_first_difference_names_the_guard_that_fired() -> None:
    assert first_difference("Is coffee bad for you?", "Is coffee not bad for you?") == "negation none vs not bad"
    assert first_difference(features("Is 2 > 1?"), features("Is 3 > 1?")) == "number 2 vs 3"


def test_changed_words_counts_the_edit_on_the_larger_side() -> None:
    assert changed_words(*pair("best eyeshadow for blue eyes", "best eyeshadow for brown eyes")) == 1
    assert changed_words(*pair("How do I cook rice?", "How do I cook rice fast?")) == 1
    assert changed_words(*pair("How do I cook rice?", "How can I cook rice?")) == 0
    assert changed_words(*pair("How do I cook rice?", "What is a recipe for fried noodles?")) == 3


def test_stems_and_related_forms() -> None:
    assert stem("movies") == stem("movie")
    assert stem("boxes") == stem("box")
    assert related("india", "indian") and related("favourite", "favorite")
    assert not related("south", "southeast") and not related("austria", "australia")


def test_features_are_computed_once_and_hashable() -> None:
    prompt = features("How far is Paris from Lyon in 2 hours? Not far.")
    assert prompt.numbers == {"2"} and prompt.names == {"paris", "lyon"}
    assert prompt.units == {("time", "hour")} and prompt.question == "open"
    assert hash(prompt) == hash(features("How far is Paris from Lyon in 2 hours? Not far."))


# Guard bugs found on the dev pairs: each case below is the pair that showed it (or a variant of it).


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How can I become famous one day?", "How can I become famous easily?"),
        ("Can I learn it in one day?", "Can I learn it in a day?"),
        ("Will I be rich one day?", "Will I ever be rich?"),
    ],
)
def test_an_indefinite_one_is_no_number_clash(a: str, b: str) -> None:
    assert number_difference(*pair(a, b)) is None


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("Can I learn it in one day?", "Can I learn it in two days?", "1 vs 2"),
        ("What are the odds of three tails?", "What are the odds of three tails and one head?", "none vs 1"),
        ("Can I learn it in 1 day?", "Can I learn it quickly?", "1 vs none"),
    ],
)
def test_one_still_clashes_with_another_count_or_a_written_digit(a: str, b: str, reason: str) -> None:
    assert number_difference(*pair(a, b)) == f"number {reason}"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Apple buying security firm AuthenTec for $356 million", "News Summary: Apple buying AuthenTec for $356M"),
        ("AbbVie Sours on $55B Shire Deal", "AbbVie cools on $55bn Shire deal"),
        ("Is a €2.5bn budget big?", "Is a 2.5 billion € budget big?"),
        ("Why did it cost $3K?", "Why did it cost $3,000?"),
    ],
)
def test_a_currency_amount_with_a_scale_suffix_is_the_same_number(a: str, b: str) -> None:
    assert number_difference(*pair(a, b)) is None


def test_a_scale_letter_without_a_currency_is_no_scale() -> None:
    assert number_difference(*pair("Can I run 10m in a second?", "Can I run 10 million in a second?")) is not None


def test_a_currency_sign_and_its_code_are_one_unit() -> None:
    pair_ = pair("Google invests $200 million in Texas wind farm", "Google invests 200 million USD in Texas wind farm")
    assert unit_difference(*pair_) is None
    assert unit_difference(*pair("How much is 5 € in dollars?", "How much is 5 EUR in dollars?")) is None
    assert unit_difference(*pair("Is $5 a lot?", "Is 5 EUR a lot?")) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is Ron's patronus?", "What is Ron Weasley's patronus?"),
        ("How can we program our Dish Network remote?", "How can you program your Dish remote?"),
        ("England captain Andrew Strauss retires from cricket", "England captain Strauss retires from cricket"),
        (
            "What made the Battle of Vimy Ridge important to Canada?",
            "Why was Vimy Ridge important to Canada?",
        ),
    ],
)
def test_a_name_that_extends_the_other_is_compatible(a: str, b: str) -> None:
    assert name_difference(*pair(a, b)) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Which gun laws apply in New Jersey?", "Which gun laws apply in New Hampshire?"),
        ("How do I share a file on Google Drive?", "How do I share a file on Google Docs?"),
        ("Is Harry Potter better than Harry Dresden?", "Is Harry Potter better than Harry?"),
    ],
)
def test_two_different_names_sharing_a_word_are_told_apart(a: str, b: str) -> None:
    assert name_difference(*pair(a, b)) is not None


def test_a_swapped_pronoun_of_the_other_sex_is_told_apart() -> None:
    a = "What problems a Muslim guy may face in the long run if he marries a white girl from the West?"
    b = "What problems a Muslim girl may face in the long run if she marries a white man from the West?"
    assert opposite_difference(*pair(a, b)) is not None
    assert opposite_difference(*pair("How do I know if he likes me?", "How do I know if she likes me?")) is not None
