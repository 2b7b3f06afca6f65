"""Mixed, realistic traffic against a running proxy: exact repeats, paraphrases and new prompts, some streamed.

Each simulated user belongs to one tenant (its own API key, hence its own cache scope). At the start every
tenant's question set is sent once, so later repeats are L1 hits and paraphrases L2 hits. Then each request is:

    hit         a stored question again                          expects X-Cache HIT-L1
    paraphrase  a paraphrase of a stored question (no-store)     expects HIT-L2 (not promoted, so it stays L2)
    miss        a new prompt (a fresh number in it)              expects MISS

chosen by the mix; a share of each kind asks for `stream: true` (the whole stream is read and must end with
`data: [DONE]`). Requests are named "<kind> json" / "<kind> stream" in locust's statistics; a wrong X-Cache or
a broken stream counts as a failure. Options (command line, or the environment variable in brackets):

    --mix hit=0.5,paraphrase=0.2,miss=0.3   [LLMPROXY_MIX]
    --stream-share 0.3                      [LLMPROXY_STREAM_SHARE]
    --tenants 5                             [LLMPROXY_TENANTS]
    --questions 20                          [LLMPROXY_QUESTIONS]   stored questions per tenant (at most 50)
    --model fake-model                      [LLMPROXY_MODEL]
    --think-time 0.1,0.5                    [LLMPROXY_THINK_TIME]  seconds between a user's requests (min,max)

With the proxy and the fake upstream running (see BENCHMARKS.md):

    locust -f load_tests/locustfile.py --headless -u 20 -r 5 -t 60s --host http://127.0.0.1:8080
"""

from __future__ import annotations

import itertools
import random
import uuid
from argparse import Namespace
from dataclasses import dataclass

import requests
from locust import FastHttpUser, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

from workload import UNIQUE, chat_body, paraphrases_of, questions, unique_question

CHAT = "/v1/chat/completions"
KINDS = ("hit", "paraphrase", "miss")
EXPECTED = {"hit": "HIT-L1", "paraphrase": "HIT-L2", "miss": "MISS"}
DONE = b"data: [DONE]"

_user_numbers = itertools.count()  # assigns users to tenants round-robin


@events.init_command_line_parser.add_listener
def add_options(parser: LocustArgumentParser) -> None:
    add = parser.add_argument
    add("--mix", env_var="LLMPROXY_MIX", default="hit=0.5,paraphrase=0.2,miss=0.3", help="shares of each kind")
    add("--stream-share", env_var="LLMPROXY_STREAM_SHARE", type=float, default=0.3, help="share with stream: true")
    add("--tenants", env_var="LLMPROXY_TENANTS", type=int, default=5, help="tenants (API keys)")
    add("--questions", env_var="LLMPROXY_QUESTIONS", type=int, default=20, help="stored questions per tenant")
    add("--model", env_var="LLMPROXY_MODEL", default="fake-model", help="model name in the requests")
    add("--think-time", env_var="LLMPROXY_THINK_TIME", default="0.1,0.5", help="min,max seconds between requests")


@dataclass(frozen=True, slots=True)
class Mix:
    weights: dict[str, float]
    stream_share: float
    tenants: int
    questions: int
    model: str
    think: tuple[float, float]


def read_mix(options: Namespace) -> Mix:
    """The traffic mix from locust's parsed options. Raises ValueError on an unknown kind or a bad number."""
    weights = {kind: 0.0 for kind in KINDS}
    for part in options.mix.split(","):
        kind, _, share = part.partition("=")
        if kind.strip() not in weights:
            raise ValueError(f"--mix: unknown kind {kind!r}, expected {', '.join(KINDS)}")
        weights[kind.strip()] = float(share)
    low, _, high = options.think_time.partition(",")
    questions_count = max(1, min(options.questions, len(questions())))
    think = (float(low), float(high or low))
    return Mix(weights, options.stream_share, max(1, options.tenants), questions_count, options.model, think)


def api_key(tenant: int) -> str:
    return f"sk-llmproxy-load-tenant-{tenant}"


@events.test_start.add_listener
def prime(environment: Environment, **_: object) -> None:
    """Send every tenant's questions once, so hits and paraphrases find them stored."""
    mix = read_mix(environment.parsed_options)
    for tenant in range(mix.tenants):
        headers = {"Authorization": f"Bearer {api_key(tenant)}", "Content-Type": "application/json"}
        for stored, _ in questions()[: mix.questions]:
            body = chat_body(stored, model=mix.model)
            requests.post(f"{environment.host}{CHAT}", data=body, headers=headers, timeout=60).raise_for_status()


class ChatUser(FastHttpUser):
    """One client of one tenant, sending the configured mix of chat completion requests."""

    def on_start(self) -> None:
        self.mix = read_mix(self.environment.parsed_options)
        self.tenant = next(_user_numbers) % self.mix.tenants
        self.headers = {"Authorization": f"Bearer {api_key(self.tenant)}", "Content-Type": "application/json"}

    def wait_time(self) -> float:
        return random.uniform(*self.mix.think)

    @task
    def chat(self) -> None:
        kinds, weights = zip(*self.mix.weights.items(), strict=True)
        kind = random.choices(kinds, weights)[0]
        stream = random.random() < self.mix.stream_share
        body, headers = self.request_for(kind, stream)
        name = f"{kind} {'stream' if stream else 'json'}"
        with self.client.post(CHAT, data=body, headers=headers, name=name, catch_response=True) as response:
            got = response.headers.get("x-cache") if response.headers else None
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
            elif got != EXPECTED[kind]:
                response.failure(f"X-Cache {got}, expected {EXPECTED[kind]}")
            elif stream and not (response.content or b"").rstrip().endswith(DONE):
                response.failure("stream did not end with data: [DONE]")

    def request_for(self, kind: str, stream: bool) -> tuple[str, dict[str, str]]:
        """Body and headers of one request of this kind."""
        index = random.randrange(self.mix.questions)
        headers = self.headers
        if kind == "hit":
            text = questions()[index][0]
        elif kind == "paraphrase":
            text = random.choice(paraphrases_of(index))
            headers = {**headers, "Cache-Control": "no-store"}  # not promoted into L1: it stays an L2 hit
        else:
            text = unique_question(index).replace(UNIQUE, str(uuid.uuid4().int % 10**12))
        return chat_body(text, stream, self.mix.model), headers
