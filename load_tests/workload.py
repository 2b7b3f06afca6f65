"""Prompts and request bodies shared by the load scripts: stored questions, their paraphrases, unique misses."""

from __future__ import annotations

import json

MODEL = "fake-model"
# Replaced by a per-request number in the Lua scripts (wrk) and the locust users: every request a new prompt.
UNIQUE = "@@N@@"

TOPICS = [
    ("reverse", "list"),
    ("sort", "dictionary"),
    ("merge", "two lists"),
    ("copy", "file"),
    ("parse", "JSON string"),
    ("read", "CSV file"),
    ("flatten", "nested list"),
    ("remove duplicates from", "list"),
    ("split", "string"),
    ("format", "date"),
    ("round", "float"),
    ("shuffle", "list"),
    ("zip", "two lists"),
    ("filter", "list"),
    ("count words in", "string"),
    ("reverse", "string"),
    ("sum", "list of numbers"),
    ("open", "text file"),
    ("delete", "file"),
    ("rename", "folder"),
    ("compress", "folder"),
    ("hash", "password"),
    ("encode", "URL"),
    ("decode", "base64 string"),
    ("measure", "execution time"),
]
LANGUAGES = ["Python", "JavaScript"]
# Same entities, no numbers, no negation: the guards let these through, so each is an L2 hit of its question.
PARAPHRASES = ["How can I {verb} a {noun} in {language}?", "What is the way to {verb} a {noun} in {language}?"]
# The fake echoes the prompt in its answer: this one makes the cached chat completion about 1 KB of JSON.
LONG_QUESTION = (
    "Explain, step by step and with a short example, how a reverse proxy with an exact cache and a semantic "
    "cache decides whether to answer a chat completion request from Redis or to forward it to the model. "
    "Cover the cache key (scope, model, messages and sampling parameters), the nearest-neighbour lookup of "
    "paraphrases with a distance threshold, the guards that refuse neighbours with different numbers or "
    "names, what happens on a miss (forward, then store the complete answer with a TTL), and why a "
    "streamed answer is stored only after the final chunk arrived while the client was still reading."
)


def questions() -> list[tuple[str, str]]:
    """(stored question, paraphrase) pairs with the same entities and no numbers: all should be L2 hits."""
    pairs = []
    for language in LANGUAGES:
        for verb, noun in TOPICS:
            question = f"How do I {verb} a {noun} in {language}?"
            pairs.append((question, PARAPHRASES[0].format(verb=verb, noun=noun, language=language)))
    return pairs


def paraphrases_of(index: int) -> list[str]:
    """Every paraphrase of the index-th stored question."""
    verb, noun = TOPICS[index % len(TOPICS)]
    language = LANGUAGES[index // len(TOPICS) % len(LANGUAGES)]
    return [template.format(verb=verb, noun=noun, language=language) for template in PARAPHRASES]


def unique_question(topic: int) -> str:
    """A question template with a number placeholder: a distinct prompt (and, by the number guard, a miss) each time."""
    verb, noun = TOPICS[topic % len(TOPICS)]
    return f"Request {UNIQUE}: how do I {verb} a {noun} in Go, for case {UNIQUE}?"


def chat_body(text: str, stream: bool = False, model: str = MODEL) -> str:
    """An OpenAI chat completion request body with one user message."""
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    return json.dumps(body)
