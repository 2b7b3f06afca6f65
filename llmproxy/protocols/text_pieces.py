"""Text cut into the several deltas a replayed stream carries, for every protocol (pure).

A real stream sends an answer's text in many small deltas; a replay that sent it whole would differ from what the
SDKs' stream helpers are built for (and from what a user sees). Cutting at word starts keeps every piece readable.
"""

from __future__ import annotations

import re

REPLAY_DELTAS = 16  # at most this many text deltas per replayed text: several, as a real stream sends
_WORD_START = re.compile(r"(?<=\s)(?=\S)")


def text_pieces(text: str, most: int = REPLAY_DELTAS) -> list[str]:
    """`text` cut at word starts into at most `most` pieces that join back into it (one piece for one word)."""
    words = _WORD_START.split(text)
    size = -(-len(words) // most)  # words per piece, rounded up
    return ["".join(words[start : start + size]) for start in range(0, len(words), size)]
