"""The channel that carries one request's events from the engine's tasks to the servicer.

A bounded queue: a writer that gets ahead of the caller waits (back-pressure reaches the
provider's stream as it did when the stream was pulled), and the reader ends either at `close`
or with the error the writer closed it with. One reader; writers are the request's tasks, in
the order the engine lets them write (an attempt's text, then the engine's events about it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fareway.server.engine.events import GenerationEvent

CHANNEL_SIZE = 64  # events a writer may be ahead of the caller


@dataclass(frozen=True)
class _Closed:
    error: BaseException | None


class Channel:
    """Events in, events out, then the end (or an error)."""

    def __init__(self, size: int = CHANNEL_SIZE) -> None:
        self._queue: asyncio.Queue[GenerationEvent | _Closed] = asyncio.Queue(size)
        self._closed = False

    async def send(self, event: GenerationEvent) -> None:
        """Put one event, waiting while the reader is `size` events behind."""
        await self._queue.put(event)

    async def close(self, error: BaseException | None = None) -> None:
        """End the stream; the reader raises `error` when one is given."""
        await self._queue.put(_Closed(error))

    async def receive(self) -> GenerationEvent:
        """The next event; StopAsyncIteration at the end, or the error it was closed with."""
        if self._closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, _Closed):
            self._closed = True
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item
