"""The engine's channel: events come out in order, a writer ahead by `size` waits for the
reader, the end and an error reach the reader, a writer cancelled while waiting does not hold
up the others, and text queued while the reader was away comes out joined."""

from __future__ import annotations

import asyncio

import pytest

from fareway.core.content import ToolCall
from fareway.server.engine.channel import Channel
from fareway.server.engine.events import Delta, FallbackTaken, ToolCalled


def event(name: str) -> FallbackTaken:
    """An event that is not text, so never joined with another: one event, one receive."""
    return FallbackTaken(name, name, "")


async def test_events_come_out_in_order_then_the_end() -> None:
    channel = Channel(size=4)
    for name in "abc":
        await channel.send(event(name))
    await channel.close()

    assert [await channel.receive() for _ in range(3)] == [event("a"), event("b"), event("c")]
    for _ in range(2):  # the end stays the end
        with pytest.raises(StopAsyncIteration):
            await channel.receive()


async def test_text_queued_while_the_reader_was_away_comes_out_as_one_delta() -> None:
    channel = Channel(size=8)
    for text in ("Hel", "lo", ", ", "world"):
        await channel.send(Delta(text))
    await channel.close()

    assert await channel.receive() == Delta("Hello, world")
    with pytest.raises(StopAsyncIteration):
        await channel.receive()


async def test_text_is_joined_only_up_to_the_next_event_of_another_kind() -> None:
    call = ToolCall("call-1", "lookup", "{}")
    channel = Channel(size=8)
    for item in (Delta("a"), Delta("b"), ToolCalled(call), Delta("c"), event("x"), Delta("d")):
        await channel.send(item)
    await channel.close()

    received = [await channel.receive() for _ in range(5)]

    assert received == [Delta("ab"), ToolCalled(call), Delta("c"), event("x"), Delta("d")]


async def test_the_first_piece_of_text_is_not_held_back_for_more() -> None:
    channel = Channel()
    reading = asyncio.create_task(channel.receive())
    await asyncio.sleep(0)
    await channel.send(Delta("first"))

    assert await reading == Delta("first")  # handed over as it came, nothing else queued
    await channel.send(Delta("second"))
    assert await channel.receive() == Delta("second")


async def test_a_writer_ahead_by_size_waits_for_the_reader() -> None:
    channel = Channel(size=2)
    await channel.send(event("a"))
    await channel.send(event("b"))
    third = asyncio.create_task(channel.send(event("c")))
    await asyncio.sleep(0)
    assert not third.done()

    assert await channel.receive() == event("a")
    await third
    assert [await channel.receive() for _ in range(2)] == [event("b"), event("c")]


async def test_a_reader_that_takes_queued_text_makes_room_for_its_writer() -> None:
    channel = Channel(size=2)
    await channel.send(Delta("a"))
    await channel.send(Delta("b"))
    third = asyncio.create_task(channel.send(Delta("c")))
    await asyncio.sleep(0)
    assert not third.done()

    assert await channel.receive() == Delta("ab")
    await third
    assert await channel.receive() == Delta("c")


async def test_the_reader_waits_for_a_writer_and_gets_its_error() -> None:
    channel = Channel()
    reading = asyncio.create_task(channel.receive())
    await asyncio.sleep(0)
    await channel.close(ValueError("boom"))

    with pytest.raises(ValueError, match="boom"):
        await reading


async def test_a_cancelled_waiting_writer_passes_its_turn_on() -> None:
    channel = Channel(size=1)
    await channel.send(event("a"))
    cancelled = asyncio.create_task(channel.send(event("lost")))
    waiting = asyncio.create_task(channel.send(event("b")))
    await asyncio.sleep(0)

    assert await channel.receive() == event("a")  # wakes the first writer...
    cancelled.cancel()  # ...which is cancelled before it can write
    await asyncio.gather(cancelled, return_exceptions=True)
    await waiting

    assert await channel.receive() == event("b")


async def test_a_full_channel_wakes_its_writer_once_half_is_taken() -> None:
    channel = Channel(size=4)
    for name in "abcd":
        await channel.send(event(name))
    fifth = asyncio.create_task(channel.send(event("e")))
    await asyncio.sleep(0)

    assert await channel.receive() == event("a")
    await asyncio.sleep(0)
    assert not fifth.done(), "three of four left: the writer sleeps on"
    assert await channel.receive() == event("b")
    await fifth
    assert [await channel.receive() for _ in range(3)] == [event("c"), event("d"), event("e")]
