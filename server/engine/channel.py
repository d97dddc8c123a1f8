"""The channel that carries one request's events from the engine's tasks to the servicer.

Bounded: a writer that gets ahead of the caller by `size` events waits (back-pressure reaches
the provider's stream as it did when the stream was pulled), and the reader ends either at
`close` or with the error the writer closed it with. One reader; the writers are the
request's tasks, in the order the engine lets them write (an attempt's text, then the engine's
events about it).

A deque and at most one waiting future per side rather than an asyncio.Queue: every piece of
text crosses here, and the common case (room to write, an event to read) touches no future
at all. A full channel wakes its writer only once the reader has taken half of it, so a
provider faster than the caller fills it in bursts instead of one event per turn of the event
loop (each turn costs more than the events it would carry).

Text that queued up while the reader was away (its previous write to the caller in flight)
comes out as one `Delta`: adjacent pieces of text are joined when read, so a caller slower
than the model gets fewer, larger messages (each gRPC message costs a write and a `sendmsg`)
and one as fast gets every piece as it came. The first piece is never held back waiting for
more: only what is already queued is joined. Other events are never joined or reordered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from fareway.server.engine.events import Delta, GenerationEvent

CHANNEL_SIZE = 128  # events a writer may be ahead of the caller


@dataclass(frozen=True)
class _Closed:
    error: BaseException | None


class Channel:
    """Events in, events out, then the end (or an error)."""

    def __init__(self, size: int = CHANNEL_SIZE) -> None:
        self._size = size
        self._items: deque[GenerationEvent | _Closed] = deque()
        self._reader: asyncio.Future[None] | None = None  # the reader, waiting for an event
        self._writers: deque[asyncio.Future[None]] = deque()  # writers waiting for room
        self._ended = False

    async def send(self, event: GenerationEvent) -> None:
        """Put one event, waiting while the reader is `size` events behind."""
        # Written out rather than shared with `close` through helpers: every piece of text is
        # sent, and a call fewer per piece is measurable (bench/engine.py).
        if len(self._items) >= self._size:
            await self._room()
        self._items.append(event)
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    async def close(self, error: BaseException | None = None) -> None:
        """End the stream; the reader raises `error` when one is given."""
        if len(self._items) >= self._size:
            await self._room()
        self._push(_Closed(error))

    async def receive(self) -> GenerationEvent:
        """The next event; StopAsyncIteration at the end, or the error it was closed with."""
        while not self._items:
            if self._ended:
                raise StopAsyncIteration
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        items = self._items
        item = items.popleft()
        if type(item) is Delta and items and type(items[0]) is Delta:
            item = Delta(self._join_text(item.text))
        if self._writers and len(items) <= self._size // 2:
            self._wake_writer()
        if isinstance(item, _Closed):
            self._ended = True
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    def _join_text(self, first: str) -> str:
        """`first` and the text of the Deltas queued right behind it, taken off the queue."""
        items = self._items
        pieces = [first]
        while items and type(items[0]) is Delta:
            pieces.append(items.popleft().text)  # type: ignore[union-attr]  # checked above
        return "".join(pieces)

    async def _room(self) -> None:
        """Wait until the reader has made room for one more item."""
        while len(self._items) >= self._size:
            waiter = asyncio.get_running_loop().create_future()
            self._writers.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._writers:
                    self._writers.remove(waiter)
                elif len(self._items) < self._size:
                    self._wake_writer()  # it was woken, but will not write: pass the turn on
                raise

    def _push(self, item: GenerationEvent | _Closed) -> None:
        self._items.append(item)
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _wake_writer(self) -> None:
        while self._writers:
            waiter = self._writers.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
