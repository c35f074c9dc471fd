"""A TCP proxy that can refuse connections: PostgreSQL "going away" without stopping the
machine's PostgreSQL.

`refuse()` closes the listening socket (a new connection gets ECONNREFUSED, as from a server
that is down) and resets every connection already open through it (as a server restart does);
`accept()` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from tests.chaos.loop import BackgroundLoop
from tests.support import free_port


class SwitchableTcpProxy:
    def __init__(self, loop: BackgroundLoop, upstream_host: str, upstream_port: int) -> None:
        self._loop = loop
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    def accept(self) -> None:
        self._loop.run(self._listen())

    def refuse(self) -> None:
        self._loop.run(self._stop_listening())

    @property
    def refusing(self) -> bool:
        return self._server is None

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self.port, reuse_address=True
            )

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            reset(writer)
        self._writers.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            reset(client_w)
            return
        self._writers |= {client_w, upstream_w}
        try:
            await asyncio.gather(pipe(client_r, upstream_w), pipe(upstream_r, client_w))
        finally:
            for writer in (client_w, upstream_w):
                self._writers.discard(writer)
                writer.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
