"""A TCP proxy of the test's own in front of a shared server (PostgreSQL): the test points the
ledger at the proxy, then stops it (the listening socket closes and every connection through
it is cut, as when the database goes away or the network fails) and starts it again on the
same port (the database is back). The shared server itself is never disturbed.

It also counts the client's requests (`requests`: each chunk of bytes read from a client in
one go, which is one request for a client that writes each request at once and waits for the
reply, as a PostgreSQL driver running one statement does): how tests see round trips."""

from __future__ import annotations

import asyncio
from contextlib import suppress

CHUNK = 65_536


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` while started."""

    def __init__(self, target_host: str, target_port: int, port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.requests = 0

    async def start(self) -> None:
        """Listen again (or for the first time) on `port`."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Stop listening and cut every connection at once (RST, not a polite close)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            server_in, server_out = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_out.transport.abort()
            return
        self._writers |= {client_out, server_out}
        pipes = [
            asyncio.create_task(self._pipe(client_in, server_out, counted=True)),
            asyncio.create_task(self._pipe(server_in, client_out, counted=False)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._pipes.difference_update(pipes)
            for writer in (client_out, server_out):
                self._writers.discard(writer)
                writer.transport.abort()

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, counted: bool
    ) -> None:
        with suppress(OSError):
            while data := await source.read(CHUNK):
                self.requests += counted
                sink.write(data)
                await sink.drain()
        # One side closed: close the other, so that both ends see the connection end.
        sink.transport.abort()
