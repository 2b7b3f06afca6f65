"""Answers that depend on a prompt's meaning, as far as a fake can tell it: the set of its content words and numbers.

Two prompts with the same content words in any order and any filler ("How do I reset my password?", "how can I
reset my password") get the same answer; a changed content word or number gives an unrelated sentence. Tests use
it to make L2 hits that truly agree and hits that truly disagree (`X-Fake-Answers: meaning`).

Like a model sampling at a temperature, the same answer comes in one of several phrasings (by `phrasing`, which
the fake takes from its reply counter), except for a deterministic request (temperature 0 and a seed): always the
first. Rephrasings of one answer have embedding similarity ≥ 0.85 (MiniLM); answers of different meanings at most
0.80, 99% of them under 0.72 (measured on 60 answers: BENCHMARKS.md, shadow verification).
"""

from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"[a-z0-9]+")
FILLER = frozenset(
    "a an the i me my mine you your we our us it its this that these those is are was were be been am do does did "
    "can could would should will shall may might must to of in on at by for from with about as and or please tell "
    "way some any there here just".split()
)
_WHO = ("The harbour pilot", "A night nurse", "The village baker", "An old cartographer", "The river guide",
        "A glass blower", "The orchard keeper", "A lighthouse painter")  # fmt: skip
_DOES = ("counts", "mends", "sketches", "weighs", "carries", "polishes", "tunes", "stacks")
_WHAT = ("copper kettles", "silk maps", "winter apples", "brass compasses", "clay lanterns", "wool blankets",
         "pine violins", "salt crystals")  # fmt: skip
_WHERE = ("beside the canal", "under the bridge", "at the market", "in the greenhouse", "on the pier",
          "behind the chapel", "near the quarry", "inside the mill")  # fmt: skip


def content_words(text: str) -> tuple[str, ...]:
    """The prompt's content words and numbers, sorted and without repeats: what its meaning is taken to be."""
    return tuple(sorted({word for word in _WORD.findall(text.lower()) if word not in FILLER}))


PHRASINGS = (
    "{who} {does} {count} {what} {where}.",
    "{Where}, {who_} {does} {count} {what}.",
    "Answer: {who_} {does} {count} {what} {where}, as usual.",
    "It is {who_} who {does} {count} {what} {where}.",
)


def meaning_answer(text: str, phrasing: int = 0) -> str:
    """One sentence chosen by the prompt's content words (in one of the PHRASINGS): the same words get the same
    sentence, other words an unrelated one."""
    digest = hashlib.sha256(" ".join(content_words(text)).encode()).digest()
    who, where = _WHO[digest[0] % 8], _WHERE[digest[3] % 8]
    return PHRASINGS[phrasing % len(PHRASINGS)].format(
        who=who,
        who_=who[0].lower() + who[1:],
        does=_DOES[digest[1] % 8],
        count=digest[4] % 90 + 10,
        what=_WHAT[digest[2] % 8],
        where=where,
        Where=where[0].upper() + where[1:],
    )
