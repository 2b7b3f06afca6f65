"""False-positive guards: two prompts that embed close together but differ in something that changes the answer.

Each guard compares the `PromptFeatures` of two prompts and returns a short reason, or None when it sees no
difference. The guards know only general English (function words, number words, negators, units, opposites):
no word list is fitted to a data set, so every verdict can be explained from the two prompts alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from llmproxy.cache.decision.features import PromptFeatures, features, has_relative, related, stem
from llmproxy.cache.decision.lexicon import (
    DIRECTED_RELATIONS,
    FUNCTION_WORDS,
    OPPOSITES,
    SINGULAR_ARTICLES,
    SPECIFIC_QUESTIONS,
    SYMMETRIC_JOINERS,
    UNIT_DIMENSIONS,
)

__all__ = ["GUARDS", "Guard", "PromptFeatures", "changed_words", "features", "first_difference"]

Guard = Callable[[PromptFeatures, PromptFeatures], str | None]


def number_difference(a: PromptFeatures, b: PromptFeatures) -> str | None:
    """Different numbers, counting "2", "two" and "2nd" as one number and "a day" as "1 day"."""
    only_a, only_b = _drop_soft_one(a.numbers - b.numbers, a, b), _drop_soft_one(b.numbers - a.numbers, b, a)
    if not only_a and not only_b:
        return None
    return f"number {_listed(only_a)} vs {_listed(only_b)}"


def _drop_soft_one(numbers: frozenset[str], own: PromptFeatures, other: PromptFeatures) -> frozenset[str]:
    # "a day" is "1 day"; and an indefinite "one" ("famous one day") clashes only with a count the other writes.
    if other.words & SINGULAR_ARTICLES or (own.indefinite_one and not other.numbers - {"1"}):
        return numbers - {"1"}
    return numbers


def unit_difference(a: PromptFeatures, b: PromptFeatures) -> str | None:
    """Different units of one kind: hours vs days, km vs miles, dollars vs rupees."""
    for dimension in UNIT_DIMENSIONS:
        units_a = {unit for kind, unit in a.units if kind == dimension}
        units_b = {unit for kind, unit in b.units if kind == dimension}
        if units_a and units_b and units_a != units_b:
            return f"unit {_listed(units_a - units_b)} vs {_listed(units_b - units_a)}"
    return None


def negation_difference(a: PromptFeatures, b: PromptFeatures) -> str | None:
    """A negation in one prompt only, or the same words with the negation moved ("not have" vs "not be")."""
    if len(a.negations) != len(b.negations) or _negation_moved(a, b):
        return f"negation {_negated(a)} vs {_negated(b)}"
    return None


def _negation_moved(a: PromptFeatures, b: PromptFeatures) -> bool:
    # Only like for like: "don't cats like" and "cats do not like" negate one verb from different places.
    same_words = sorted(a.content) == sorted(b.content)
    same_negators = sorted(word for word, _ in a.negations) == sorted(word for word, _ in b.negations)
    return same_words and same_negators and sorted(a.negations) != sorted(b.negations)


def _negated(prompt: PromptFeatures) -> str:
    return ",".join(sorted(f"not {head}".strip() for _, head in prompt.negations)) or "none"


def name_difference(a: PromptFeatures, b: PromptFeatures) -> str | None:
    """A proper noun, acronym or date that one prompt names and the other does not mention at all."""
    only_a, only_b = _unexplained(a, b), _unexplained(b, a)
    if not only_a and not only_b:
        return None
    return f"name {_listed(only_a)} vs {_listed(only_b)}"


def unexplained_names(a: PromptFeatures, b: PromptFeatures) -> list[str]:
    """The names `name_difference` objects to, from both prompts."""
    return _unexplained(a, b) + _unexplained(b, a)


def _unexplained(own: PromptFeatures, other: PromptFeatures) -> list[str]:
    return [name for name in own.names if not has_relative(name, other.words) and not _extends(name, own, other)]


def _extends(name: str, own: PromptFeatures, other: PromptFeatures) -> bool:
    """Whether `name` only lengthens a name the other prompt writes: "Ron Weasley" for "Ron", "Dish Network" for "Dish".

    The other prompt must write the shared word as a name too, and each of its runs that share a word with this
    one must fit inside it, in order: "New Jersey" does not extend "New Hampshire".
    """
    for run in own.name_runs:
        shared = [
            word for word in run if word != name and word not in FUNCTION_WORDS and has_relative(word, other.words)
        ]
        if name not in run or not shared:
            continue
        touching = [other_run for other_run in other.name_runs if any(has_relative(word, other_run) for word in shared)]
        if touching and all(_fits_inside(other_run, run) for other_run in touching):
            return True
    return False


def _fits_inside(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    remaining = iter(long)
    return all(any(related(word, later) for later in remaining) for word in short)


def order_difference(a: PromptFeatures, b: PromptFeatures) -> str | None:
    """The same words in swapped roles: "A better than B" vs "B better than A", "A to B" vs "B to A"."""
    if a.content == b.content or sorted(a.content) != sorted(b.content):
        return None
    moved = [index for index, (x, y) in enumerate(zip(a.content, b.content, strict=True)) if x != y]
    first, last = a.content[moved[0]], a.content[moved[-1]]
    # A word that stays put between the moved ones is the relation they swapped across ("find", "carrying").
    pivot = any(a.content[index] == b.content[index] for index in range(moved[0], moved[-1]))
    between = _tokens_between(a, first, last)
    if between & SYMMETRIC_JOINERS or not (pivot or between & DIRECTED_RELATIONS):
        return None
    return f"order {first}/{last} swapped"


def _tokens_between(prompt: PromptFeatures, first: str, last: str) -> frozenset[str]:
    stems = [stem(token) for token in prompt.tokens]
    start, end = stems.index(first), len(stems) - stems[::-1].index(last)
    return frozenset(prompt.tokens[start:end])


def opposite_difference(a: PromptFeatures, b: PromptFeatures) -> str | None:
    """A word in one prompt only whose opposite the other uses: higher/lower, buy/sell, men/women."""
    for word in sorted(a.words ^ b.words):
        in_a = word in a.words
        opposites = OPPOSITES.get(word, frozenset()) & (b.words if in_a else a.words)
        if opposites:
            first, second = (word, min(opposites)) if in_a else (min(opposites), word)
            return f"opposite {first} vs {second}"
    return None


def question_difference(a: PromptFeatures, b: PromptFeatures) -> str | None:
    """Two different specific questions: who, when, where, why, how many."""
    kinds = {a.question, b.question}
    if len(kinds) == 1 or not kinds <= SPECIFIC_QUESTIONS:
        return None
    return f"question {a.question} vs {b.question}"


def changed_words(a: PromptFeatures, b: PromptFeatures) -> int:
    """How many content words one prompt added, dropped or swapped (counted on the prompt with more of them)."""
    return max(_count_unmatched(a.content, b.content), _count_unmatched(b.content, a.content))


def _count_unmatched(words: tuple[str, ...], others: tuple[str, ...]) -> int:
    other_set = frozenset(others)
    return sum(1 for word in words if word not in other_set and not has_relative(word, other_set))


def _listed(values: Iterable[str]) -> str:
    return ",".join(sorted(values)) or "none"


GUARDS: tuple[Guard, ...] = (
    number_difference,
    unit_difference,
    negation_difference,
    name_difference,
    order_difference,
    opposite_difference,
    question_difference,
)


def first_difference(a: str | PromptFeatures, b: str | PromptFeatures) -> str | None:
    """The first guard that tells the prompts apart, as "<guard> <detail>"; None when none does."""
    features_a = a if isinstance(a, PromptFeatures) else features(a)
    features_b = b if isinstance(b, PromptFeatures) else features(b)
    for guard in GUARDS:
        reason = guard(features_a, features_b)
        if reason is not None:
            return reason
    return None
