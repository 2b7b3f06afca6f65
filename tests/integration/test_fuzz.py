"""Property-based fuzzing of the cached endpoints over real HTTP: whatever a client sends, the proxy never
answers 5xx, every 4xx is in OpenAI's error shape, and the keep-alive connection answers the next request.

Bodies: arbitrary JSON values, valid bodies with fields retyped, given odd numbers or text, nested deeply or
dropped, cut short, or plain bytes. Headers: the proxy's control headers and any others, with any valid field
bytes (ISO-8859-1 and UTF-8 included). A real proxy, Redis Stack and fake upstream answer every example.

Example counts come from the Hypothesis profile (tests/conftest.py): `ci` by default (derandomized, so CI runs
the same examples every time), `fuzz` for a long run by hand: `pytest tests/integration/test_fuzz.py
--hypothesis-profile=fuzz --hypothesis-show-statistics`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.fuzz_strategies import VALID_BODIES, encoded, headers, mutated_bodies, raw_bodies
from tests.support.keepalive import OneConnection, RawHeaders, assert_error_shape
from tests.support.upstream import FakeUpstream

PATHS = list(VALID_BODIES)


@pytest.fixture(scope="module")
def connection(proxy_url: str, upstream_url: str) -> Iterator[OneConnection]:
    # Module-scoped: Hypothesis runs many examples per test, all on this one keep-alive connection (and recorder).
    fake = FakeUpstream(upstream_url, f"test-fuzz-{uuid.uuid4().hex}")
    with OneConnection(proxy_url, f"sk-fuzz-{uuid.uuid4().hex}", fake) as held:
        yield held
    fake.reset()


def assert_answered_well(connection: OneConnection, path: str, body: bytes, sent: RawHeaders = ()) -> None:
    response = connection.send("POST", path, body, sent)
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert_error_shape(response)
    assert connection.still_usable(), "the connection the request came on must answer the next one"


@pytest.mark.parametrize("path", PATHS)
@given(data=st.data())
def test_any_body_is_answered_without_a_5xx_on_a_kept_connection(
    connection: OneConnection, path: str, data: st.DataObject
) -> None:
    assert_answered_well(connection, path, data.draw(raw_bodies(path), label="body"))


@given(path=st.sampled_from(PATHS), sent=headers(), data=st.data())
def test_any_headers_are_answered_without_a_5xx_on_a_kept_connection(
    connection: OneConnection, path: str, sent: list[tuple[bytes, bytes]], data: st.DataObject
) -> None:
    body = data.draw(st.one_of(st.just(VALID_BODIES[path]), mutated_bodies(path)), label="body")
    assert_answered_well(connection, path, encoded(body), sent)
