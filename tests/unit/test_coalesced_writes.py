"""CoalescedWrites on a real socket pair: one turn of the event loop's writes leave as one, close sends them first."""

from __future__ import annotations

import asyncio
import socket

import pytest

from llmproxy.commands.http_protocol import CoalescedWrites


async def connected() -> tuple[CoalescedWrites, asyncio.Transport, socket.socket]:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    return CoalescedWrites(transport, loop), transport, theirs


def received(peer: socket.socket) -> bytes:
    try:
        return peer.recv(65536)
    except BlockingIOError:
        return b""


async def one_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_the_writes_of_one_turn_arrive_together_after_it() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        writes, transport, peer = await connected()
        writes.write(b"HTTP/1.1 200 OK\r\n")
        writes.writelines([b"\r\n", memoryview(b"body")])
        before = received(peer)
        await one_turn()
        after = received(peer)
        transport.close()
        peer.close()
        return before, after

    assert asyncio.run(scenario()) == (b"", b"HTTP/1.1 200 OK\r\n\r\nbody")


def test_close_sends_what_is_pending_first() -> None:
    async def scenario() -> bytes:
        writes, _, peer = await connected()
        writes.write(b"last words")
        writes.close()
        await one_turn()
        data = received(peer)
        peer.close()
        return data

    assert asyncio.run(scenario()) == b"last words"


def test_a_write_left_when_the_transport_closed_underneath_is_dropped_quietly() -> None:
    async def scenario() -> bool:
        writes, transport, peer = await connected()
        writes.write(b"late")
        transport.close()  # e.g. uvicorn aborting the connection
        await one_turn()
        peer.close()
        return writes.is_closing()

    assert asyncio.run(scenario()) is True


@pytest.mark.parametrize("name", ["peername", "sockname"])
def test_the_rest_is_the_wrapped_transport(name: str) -> None:
    async def scenario() -> tuple[object, object]:
        writes, transport, peer = await connected()
        pair = writes.get_extra_info(name), transport.get_extra_info(name)
        transport.close()
        peer.close()
        return pair

    wrapped, original = asyncio.run(scenario())
    assert wrapped == original
