"""How a prompt longer than the model's window is cut for routing: its leading window, then its sentences (pure).

The leading window is what the model would see of the prompt, and decides like a short prompt does. The
sentences make sure the rest is not ignored: padding around a blocked question dilutes a whole window far past
any route threshold (measured: 0.44-0.66 for a question at distance 0.05 alone), while the question as a
sentence of its own keeps its distance. A sentence longer than a window is cut into consecutive windows.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# Sentence ends: ! ? (also glued to the next word), . and ; before whitespace (not 3.14 or example.com), line breaks.
_SENTENCE_END = re.compile(r"[!?。！？]+|[.;…]+(?=\s)|\n")

Span = tuple[int, int]  # a token's (start, end) character offsets in the text


@dataclass(frozen=True, slots=True)
class Passages:
    """The texts a long prompt is routed on: the leading window first, then each distinct sentence or window."""

    leading: str
    others: tuple[str, ...]


def cut_passages(text: str, spans: Sequence[Span], limit: int) -> Passages:
    """The leading window of limit tokens and every sentence of text (in windows of limit tokens when longer)."""
    leading = _window_text(text, spans, 0, min(limit, len(spans)))
    seen = {_normalised(leading)}
    others: list[str] = []
    for passage in _sentence_passages(text, spans, limit):
        key = _normalised(passage)
        if key and key not in seen:  # padding repeats itself: each distinct text is embedded once
            seen.add(key)
            others.append(passage)
    return Passages(leading, tuple(others))


def sentence_bounds(text: str) -> Iterator[Span]:
    """(start, end) of each sentence of text, terminators included."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        yield start, match.end()
        start = match.end()
    if start < len(text):
        yield start, len(text)


def _sentence_passages(text: str, spans: Sequence[Span], limit: int) -> Iterator[str]:
    starts = [start for start, _ in spans]
    for begin, end in sentence_bounds(text):
        first, last = bisect.bisect_left(starts, begin), bisect.bisect_left(starts, end)
        if last - first <= limit:
            yield text[begin:end].strip()
            continue
        for window in range(first, last, limit):
            yield _window_text(text, spans, window, min(window + limit, last))


def _window_text(text: str, spans: Sequence[Span], first: int, last: int) -> str:
    """The text of tokens first..last-1."""
    if first >= last:
        return text.strip()
    return text[spans[first][0] : spans[last - 1][1]]


def _normalised(passage: str) -> str:
    return " ".join(passage.split()).casefold()
