"""What the learned decision knows about one (query, candidate) pair: distance, guard flags, overlap, rarity.

Computed once per pair from the two prompts' `PromptFeatures` and their cosine distance. Every value is symmetric
in the two prompts (the order of a pair carries no meaning), so the query and the cached prompt may swap roles.
Word rarity comes from `wordfreq` (English frequencies shipped inside the package, no download).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from wordfreq import zipf_frequency

from llmproxy.cache.decision.features import has_relative
from llmproxy.cache.decision.guards import (
    PromptFeatures,
    changed_words,
    name_difference,
    negation_difference,
    number_difference,
    opposite_difference,
    order_difference,
    question_difference,
    unexplained_names,
    unit_difference,
)
from llmproxy.cache.decision.lexicon import SPECIFIC_QUESTIONS

__all__ = ["FEATURE_NAMES", "PairFeatures", "pair_features", "rarity"]

PairFeatures = tuple[float, ...]

COMMON_ZIPF = 4.0  # a word seen at least 10 times per million words is an ordinary word ("network", "dish")
_MAX_RARITY = 8.0  # Zipf 8 is about the frequency of "the": rarity = 8 - Zipf, so an unknown word weighs 8

FEATURE_NAMES: tuple[str, ...] = (
    "distance",
    "number_clash",  # both prompts write numbers, and they differ
    "number_added",  # one prompt writes a number the other, without any, leaves out
    "unit",
    "negation",
    "name",
    "name_only_common",  # the name guard fires, but only on ordinary words written capitalised ("Dish Network")
    "order",
    "opposite",
    "question",
    "question_kinds_differ",
    "changed_words",
    "word_jaccard",
    "content_jaccard",
    "tokens_min",
    "tokens_max",
    "unmatched_min",  # content words with no form or spelling in the other prompt, on the side with fewer
    "unmatched_max",
    "rare_overlap",  # rarity-weighted Jaccard of the content words: sharing rare words counts most
    "rarest_unmatched",  # rarity of the rarest word only one prompt uses (0 when none)
    "unmatched_rarity_min",  # summed rarity of each prompt's unmatched words, the smaller and the larger side
    "unmatched_rarity_max",
    "rare_unmatched",  # how many unmatched words are rare (Zipf under 4: fewer than 10 per million words)
    "openers",  # the pair of opening words ("how"+"what"), as one symmetric code: question focus changes
    "same_opening",  # the first two words are the same
)
# Opening words a question's focus hangs on; any other opening is the last code.
OPENERS = ("how", "what", "why", "when", "where", "who", "which", "is", "are", "can", "do", "does", "should")
_RARE = 4.0


def rarity(word: str) -> float:
    """How rare an English word is: 8 - its Zipf frequency, so "the" is about 0 and an unknown word 8."""
    return _MAX_RARITY - min(zipf_frequency(word, "en"), _MAX_RARITY)


def pair_features(a: PromptFeatures, b: PromptFeatures, distance: float) -> PairFeatures:
    """The feature vector of one pair, in `FEATURE_NAMES` order."""
    unmatched_a, unmatched_b = _unmatched(a.content, b.content), _unmatched(b.content, a.content)
    numbers_differ = _fired(number_difference, a, b)
    both_count = bool(a.numbers) and bool(b.numbers)
    name = _fired(name_difference, a, b)
    rarity_a, rarity_b = sum(map(rarity, unmatched_a)), sum(map(rarity, unmatched_b))
    return (
        distance,
        numbers_differ * both_count,
        numbers_differ * (not both_count),
        _fired(unit_difference, a, b),
        _fired(negation_difference, a, b),
        name,
        name * _only_common(unexplained_names(a, b)),
        _fired(order_difference, a, b),
        _fired(opposite_difference, a, b),
        _fired(question_difference, a, b),
        float(a.question != b.question and bool({a.question, b.question} & SPECIFIC_QUESTIONS)),
        float(changed_words(a, b)),
        _jaccard(a.words, b.words),
        _jaccard(frozenset(a.content), frozenset(b.content)),
        float(min(len(a.tokens), len(b.tokens))),
        float(max(len(a.tokens), len(b.tokens))),
        float(min(len(unmatched_a), len(unmatched_b))),
        float(max(len(unmatched_a), len(unmatched_b))),
        _rare_overlap(frozenset(a.content), frozenset(b.content)),
        max((rarity(word) for word in (*unmatched_a, *unmatched_b)), default=0.0),
        min(rarity_a, rarity_b),
        max(rarity_a, rarity_b),
        float(sum(1 for word in (*unmatched_a, *unmatched_b) if rarity(word) > _RARE)),
        _openers(a, b),
        float(_opening(a, 2) == _opening(b, 2)),
    )


def _opening(prompt: PromptFeatures, count: int) -> tuple[str, ...]:
    return tuple(token for token in prompt.tokens if token.isalpha())[:count]


def _openers(a: PromptFeatures, b: PromptFeatures) -> float:
    first, second = sorted((_opener_index(a), _opener_index(b)))
    return float(first * (len(OPENERS) + 1) + second)


def _opener_index(prompt: PromptFeatures) -> int:
    opening = _opening(prompt, 1)
    return OPENERS.index(opening[0]) if opening and opening[0] in OPENERS else len(OPENERS)


def _fired(
    guard: Callable[[PromptFeatures, PromptFeatures], str | None], a: PromptFeatures, b: PromptFeatures
) -> float:
    return float(guard(a, b) is not None)


def _unmatched(words: tuple[str, ...], others: tuple[str, ...]) -> list[str]:
    other_set = frozenset(others)
    return [word for word in dict.fromkeys(words) if word not in other_set and not has_relative(word, other_set)]


def _only_common(names: Iterable[str]) -> float:
    listed = list(names)
    return float(bool(listed) and all(zipf_frequency(name, "en") >= COMMON_ZIPF for name in listed))


def _jaccard(first: frozenset[str], second: frozenset[str]) -> float:
    union = first | second
    return len(first & second) / len(union) if union else 1.0


def _rare_overlap(first: frozenset[str], second: frozenset[str]) -> float:
    union = first | second
    if not union:
        return 1.0
    return sum(rarity(word) for word in first & second) / max(sum(rarity(word) for word in union), 1e-9)
