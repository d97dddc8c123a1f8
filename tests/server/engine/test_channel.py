"""The engine's channel: events come out in order, a writer ahead by `size` waits for the
reader, the end and an error reach the reader, and a writer cancelled while waiting does not
hold up the others."""

from __future__ import annotations

import asyncio

import pytest

from fareway.server.engine.channel import Channel
from fareway.server.engine.events import Delta


async def test_events_come_out_in_order_then_the_end() -> None:
    channel = Channel(size=4)
    for text in "abc":
        await channel.send(Delta(text))
    await channel.close()

    assert [await channel.receive() for _ in range(3)] == [Delta("a"), Delta("b"), Delta("c")]
    for _ in range(2):  # the end stays the end
        with pytest.raises(StopAsyncIteration):
            await channel.receive()


async def test_a_writer_ahead_by_size_waits_for_the_reader() -> None:
    channel = Channel(size=2)
    await channel.send(Delta("a"))
    await channel.send(Delta("b"))
    third = asyncio.create_task(channel.send(Delta("c")))
    await asyncio.sleep(0)
    assert not third.done()

    assert await channel.receive() == Delta("a")
    await third
    assert [await channel.receive() for _ in range(2)] == [Delta("b"), Delta("c")]


async def test_the_reader_waits_for_a_writer_and_gets_its_error() -> None:
    channel = Channel()
    reading = asyncio.create_task(channel.receive())
    await asyncio.sleep(0)
    await channel.close(ValueError("boom"))

    with pytest.raises(ValueError, match="boom"):
        await reading


async def test_a_cancelled_waiting_writer_passes_its_turn_on() -> None:
    channel = Channel(size=1)
    await channel.send(Delta("a"))
    cancelled = asyncio.create_task(channel.send(Delta("lost")))
    waiting = asyncio.create_task(channel.send(Delta("b")))
    await asyncio.sleep(0)

    assert await channel.receive() == Delta("a")  # wakes the first writer...
    cancelled.cancel()  # ...which is cancelled before it can write
    await asyncio.gather(cancelled, return_exceptions=True)
    await waiting

    assert await channel.receive() == Delta("b")


async def test_a_full_channel_wakes_its_writer_once_half_is_taken() -> None:
    channel = Channel(size=4)
    for text in "abcd":
        await channel.send(Delta(text))
    fifth = asyncio.create_task(channel.send(Delta("e")))
    await asyncio.sleep(0)

    assert await channel.receive() == Delta("a")
    await asyncio.sleep(0)
    assert not fifth.done(), "three of four left: the writer sleeps on"
    assert await channel.receive() == Delta("b")
    await fifth
    assert [await channel.receive() for _ in range(3)] == [Delta("c"), Delta("d"), Delta("e")]
