"""What the guards know about one prompt: its tokens, content words, numbers, names, units, negations, question kind.

Computed once per prompt (`features`), so comparing a query with several candidates never re-reads raw text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from llmproxy.cache.decision.lexicon import (
    CALENDAR_NAMES,
    FUNCTION_WORDS,
    NEGATORS,
    NUMBER_WORDS,
    ORDINAL_WORDS,
    QUESTION_WORDS,
    SCALES,
    SYMMETRIC_JOINERS,
    UNIT_ALIASES,
    UNIT_DIMENSIONS,
    YES_NO_OPENERS,
)
from llmproxy.cache.decision.numbers import is_indefinite_one, parse_numbers

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*[^\W\d_]*|[^\W\d_]+(?:'[^\W\d_]+)*|[$€£₹¥]|[.?!:;,/&]")
_SENTENCE_END = frozenset(".?!:;")
_PUNCTUATION = frozenset(".?!:;,/&")
_CURRENCY_SIGNS = frozenset("$€£₹¥")
_POSSESSIVE = re.compile(r"'s$")
_CONTRACTED_NOT = re.compile(r"n't$")
_UNIT_WORDS = frozenset().union(*UNIT_DIMENSIONS.values())
_NOT_CONTENT = (
    FUNCTION_WORDS | _PUNCTUATION | _CURRENCY_SIGNS | NUMBER_WORDS.keys() | ORDINAL_WORDS.keys() | SCALES.keys()
)
_NOT_NAMES = FUNCTION_WORDS | _UNIT_WORDS | SYMMETRIC_JOINERS  # "VS" is no acronym
_RUN_JOINERS = frozenset(("of", "the"))
_POLITE_MODALS = frozenset("can could would will".split())
_SUFFIXES = (("ies", "y"), ("ie", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh"))


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """What the guards compare about one prompt."""

    tokens: tuple[str, ...]  # lower-cased words, numbers, currency signs and punctuation, in order
    words: frozenset[str]  # the tokens that are words or numbers
    content: tuple[str, ...]  # stems of the content words, in order
    numbers: frozenset[str]  # normalised values: "2", "two" and "2nd" are all "2"; "10k" is "10000"
    indefinite_one: bool  # its only 1 is the word "one" ("one day"): no count unless the other prompt counts
    names: frozenset[str]  # lower-cased proper nouns, acronyms, months and weekdays
    name_runs: tuple[tuple[str, ...], ...]  # runs of capitalised words, lower-cased: ("battle", "vimy", "ridge")
    units: frozenset[tuple[str, str]]  # (dimension, unit), e.g. ("time", "hour")
    negations: tuple[tuple[str, str], ...]  # (negator, the content word after it or ""), e.g. ("n't", "like")
    question: str | None  # yes/no, who, when, where, why, quantity or open; None for statements and requests


def features(text: str) -> PromptFeatures:
    """Tokenise a prompt and extract everything the guards compare."""
    raw = tuple(_TOKEN.findall(text.replace("’", "'")))
    tokens = tuple(_POSSESSIVE.sub("", token.lower()) for token in raw)
    return PromptFeatures(
        tokens=tokens,
        words=frozenset(token for token in tokens if token not in _PUNCTUATION),
        content=tuple(stem(token) for token in tokens if _is_content(token)),
        numbers=frozenset(parse_numbers(tokens)),
        indefinite_one=is_indefinite_one(tokens),
        names=frozenset(_names(raw)),
        name_runs=tuple(_name_runs(raw)),
        units=frozenset(_units(tokens)),
        negations=tuple(_negations(tokens)),
        question=question_kind(tokens),
    )


def stem(word: str) -> str:
    """A crude suffix stripper: enough that "cars"/"car", "boxes"/"box" and "movies"/"movie" compare equal."""
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) >= len(suffix) + 2:
            return word[: -len(suffix)] + replacement
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def related(first: str, second: str) -> bool:
    """Whether two words are forms or spellings of one word ("india"/"indian", "favourite"/"favorite")."""
    if first == second:
        return True
    shared = 0
    for x, y in zip(first, second, strict=False):
        if x != y:
            break
        shared += 1
    if shared >= 4 and shared >= max(len(first), len(second)) - 3:
        return True
    return min(len(first), len(second)) >= 6 and SequenceMatcher(None, first, second).ratio() >= 0.9


def has_relative(word: str, others: Iterable[str]) -> bool:
    """Whether `others` holds `word` or a form or spelling of it."""
    # Related words share their first two letters, a cheap filter before the character comparison.
    return any(other[:2] == word[:2] and related(word, other) for other in others)


def question_kind(tokens: tuple[str, ...]) -> str | None:
    """The kind of the first question; None for statements and requests ("Can you explain ...")."""
    starts = [index for index in range(len(tokens)) if index == 0 or tokens[index - 1] in _SENTENCE_END]
    for start in starts:
        kind = _kind_at(tokens, start)
        if kind is not None:
            return kind
    return next((_wh_kind(tokens, index) for index, token in enumerate(tokens) if token in QUESTION_WORDS), None)


def _kind_at(tokens: tuple[str, ...], index: int) -> str | None:
    following = tokens[index + 1] if index + 1 < len(tokens) else ""
    if tokens[index] in QUESTION_WORDS:
        return _wh_kind(tokens, index)
    if tokens[index] in _POLITE_MODALS and following == "you":
        return None  # "Can you explain X" asks for X, whatever its grammar says
    return "yes/no" if tokens[index] in YES_NO_OPENERS else None


def _wh_kind(tokens: tuple[str, ...], index: int) -> str:
    following = tokens[index + 1] if index + 1 < len(tokens) else ""
    return "quantity" if tokens[index] == "how" and following in ("many", "much") else QUESTION_WORDS[tokens[index]]


def _is_content(token: str) -> bool:
    # Digits are the number guard's business, "n't" the negation guard's.
    return token not in _NOT_CONTENT and not _CONTRACTED_NOT.search(token) and not any(c.isdigit() for c in token)


def _names(raw: tuple[str, ...]) -> Iterable[str]:
    """Capitalised words not opening a sentence, acronyms and calendar names, lower-cased (casing is unreliable).

    In a Title Case Headline every word is capitalised, so there only acronyms and calendar names count.
    """
    title_case = _is_title_case(raw)
    sentence_start = True
    for token in raw:
        word = _POSSESSIVE.sub("", token.lower())
        acronym = len(token) > 1 and token.isupper()
        capitalised = token[:1].isupper() and not sentence_start and not title_case
        if (acronym or capitalised or word in CALENDAR_NAMES) and _may_be_name(word):
            yield word
        sentence_start = token in _SENTENCE_END


def _name_runs(raw: tuple[str, ...]) -> Iterable[tuple[str, ...]]:
    """Runs of capitalised words ("Ron Weasley", "Battle of Vimy Ridge"), a joining "of"/"the" inside included."""
    run: list[str] = []
    for index, token in enumerate(raw):
        following = raw[index + 1] if index + 1 < len(raw) else ""
        if token[:1].isupper() and token.replace("'", "").isalpha():
            run.append(_POSSESSIVE.sub("", token.lower()))
        elif run and token in _RUN_JOINERS and following[:1].isupper():
            continue
        elif run:
            yield tuple(run)
            run = []
    if run:
        yield tuple(run)


def _may_be_name(word: str) -> bool:
    return len(word) > 1 and word.isalpha() and word not in _NOT_NAMES


def _is_title_case(raw: tuple[str, ...]) -> bool:
    starts = {0} | {index + 1 for index, token in enumerate(raw) if token in _SENTENCE_END}
    inner = [token for index, token in enumerate(raw) if index not in starts and token.isalpha()]
    if any(token[:1].isupper() and token.lower() in FUNCTION_WORDS and token != "I" for token in inner):
        return True  # "Obama To Star In Parks And Recreation"
    long_words = [token for token in inner if len(token) > 3]
    return len(long_words) >= 5 and sum(1 for token in long_words if token[:1].isupper()) >= 0.8 * len(long_words)


def _units(tokens: tuple[str, ...]) -> Iterable[tuple[str, str]]:
    for token in tokens:
        unit = token if token in _UNIT_WORDS else stem(token)
        for dimension, units in UNIT_DIMENSIONS.items():
            if unit in units:
                yield dimension, UNIT_ALIASES.get(unit, unit)


def _negations(tokens: tuple[str, ...]) -> Iterable[tuple[str, str]]:
    for index, token in enumerate(tokens):
        if _is_negation(tokens, index):
            following = (stem(later) for later in tokens[index + 1 :] if _is_content(later))
            yield ("n't" if _CONTRACTED_NOT.search(token) else token), next(following, "")


def _is_negation(tokens: tuple[str, ...], index: int) -> bool:
    if tokens[index] == "not" and index > 0 and tokens[index - 1] in ("or", "if", "why"):
        return False  # "... or not", "if not, ...", "why not" ask the same question as without them
    return tokens[index] in NEGATORS or bool(_CONTRACTED_NOT.search(tokens[index]))
