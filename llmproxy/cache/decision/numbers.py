"""Numbers in a tokenised prompt, normalised so that "2", "two", "2nd" and "2.0" are one value and "10k" is 10000."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

from llmproxy.cache.decision.lexicon import (
    CURRENCY_SCALES,
    NUMBER_WORDS,
    ONE_AS_PRONOUN_AFTER,
    ONE_AS_PRONOUN_BEFORE,
    ORDINAL_WORDS,
    SCALES,
)

_NUMERAL = re.compile(r"(\d+(?:[.,]\d+)*)([^\W\d_]*)")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_CURRENCY_SIGNS = frozenset("$€£₹¥")


def parse_numbers(tokens: tuple[str, ...]) -> list[str]:
    """Every number the tokens write, in digits or words, as a canonical decimal string."""
    values: list[Decimal] = []
    index = 0
    while index < len(tokens):
        found, index = _number_at(tokens, index)
        values.extend(found)
    return [_canonical(value) for value in values]


def _number_at(tokens: tuple[str, ...], index: int) -> tuple[list[Decimal], int]:
    """The numbers starting at tokens[index], and the index after them."""
    token = tokens[index]
    numeral = _NUMERAL.fullmatch(token)
    if numeral:
        *listed, last = _numeral_values(numeral.group(1))
        suffix = numeral.group(2)
        if index > 0 and tokens[index - 1] in _CURRENCY_SIGNS and suffix in CURRENCY_SCALES:
            return [*listed, last * CURRENCY_SCALES[suffix]], index + 1  # "$356M" is 356 million, not 356 metres
        scale, index = _scale_after(tokens, index, suffix)
        return [*listed, last * scale], index
    if token in ORDINAL_WORDS:
        return [Decimal(ORDINAL_WORDS[token])], index + 1
    if token in NUMBER_WORDS and not _is_pronoun_one(tokens, index):
        return _spelled_number(tokens, index)
    if token in SCALES and len(token) > 2:
        return [Decimal(SCALES[token])], index + 1  # "a million", "thousands"
    return [], index + 1


def _numeral_values(digits: str) -> Iterator[Decimal]:
    if _THOUSANDS.fullmatch(digits):
        yield Decimal(digits.replace(",", ""))
        return
    for part in digits.split(","):  # "3,4" lists two numbers
        if part.count(".") <= 1:
            yield Decimal(part)
        else:  # "1.2.3" is a version: keep its parts
            yield from (Decimal(piece) for piece in part.split("."))


def _scale_after(tokens: tuple[str, ...], index: int, suffix: str) -> tuple[int, int]:
    """The multiplier written as a suffix ("10k", "$3bn") or as the next word ("5 million")."""
    if suffix in SCALES:
        return SCALES[suffix], index + 1
    following = tokens[index + 1] if index + 1 < len(tokens) else ""
    if not suffix and len(following) > 2 and following in SCALES:
        return SCALES[following], index + 2
    return 1, index + 1


def _spelled_number(tokens: tuple[str, ...], index: int) -> tuple[list[Decimal], int]:
    """ "twenty five" is 25 and "two hundred" 200: a run of number words is one number."""
    value = NUMBER_WORDS[tokens[index]]
    index += 1
    if index < len(tokens) and value >= 20 and value % 10 == 0 and 0 < NUMBER_WORDS.get(tokens[index], 0) < 10:
        value += NUMBER_WORDS[tokens[index]]
        index += 1
    while index < len(tokens) and len(tokens[index]) > 2 and tokens[index] in SCALES:
        value *= SCALES[tokens[index]]
        index += 1
    return [Decimal(value)], index


def is_indefinite_one(tokens: tuple[str, ...]) -> bool:
    """Whether every 1 the tokens write is the word "one" ("one day", "one of"): indefinite, unless counted against."""
    ones = [token for index, token in enumerate(tokens) if _number_at(tokens, index)[0] == [Decimal(1)]]
    return bool(ones) and all(token == "one" for token in ones)


def _is_pronoun_one(tokens: tuple[str, ...], index: int) -> bool:
    """ "one" in "how can one learn" or "which one is best" is not the number 1."""
    if tokens[index] != "one":
        return False
    before = tokens[index - 1] if index > 0 else ""
    after = tokens[index + 1] if index + 1 < len(tokens) else ""
    return before in ONE_AS_PRONOUN_BEFORE or after in ONE_AS_PRONOUN_AFTER or not after.isalpha()


def _canonical(value: Decimal) -> str:
    return format(value.normalize(), "f")
