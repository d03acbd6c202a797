"""A loopback TCP proxy that misbehaves on demand, between the console and its backend.

It runs its own event loop in a thread, so tests on any loop (and consoles in other threads or
processes) can use it. Modes, switched at any time with :meth:`FaultProxy.set_mode`:

* ``pass``: forward both ways;
* ``delay``: forward, each chunk ``delay`` seconds late (a slow link);
* ``drop``: accept and reset at once (a backend that is down: every call fails fast);
* ``blackhole``: accept and read, never forward nor answer (a hung backend or a dead route).

:meth:`cut` closes every open connection at once, mid-stream (a crash of the link); new
connections then follow the current mode.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "delay", "drop", "blackhole"]


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "pass"
        self.delay = 0.0
        self.port = 0
        self.connections_seen = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            self._close_all()

        self._run(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def set_mode(self, mode: Mode, delay: float = 0.0) -> None:
        self.mode, self.delay = mode, delay

    def retarget(self, target_port: int) -> None:
        """Send new connections to another port (a backend restarted elsewhere)."""
        self.target = (self.target[0], target_port)

    def cut(self) -> None:
        """Close every open connection now (both sides), whatever is in flight."""

        async def cut() -> None:
            self._close_all()

        self._run(cut())

    @property
    def open_connections(self) -> int:
        return len(self._open)

    # -- inside the proxy's loop ---------------------------------------------------------------

    def _run(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def _close_all(self) -> None:
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_seen += 1
        if self.mode == "drop":
            _reset(writer)
            return
        self._open.add(writer)
        if self.mode == "blackhole":
            try:
                while await reader.read(65536):
                    pass
            except (ConnectionError, OSError):
                pass
            finally:
                self._forget(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._forget(writer)
            _reset(writer)
            return
        self._open.add(up_writer)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer),
                             return_exceptions=True)
        for side in (writer, up_writer):
            self._forget(side)
            side.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                if self.mode == "blackhole":
                    continue  # an open connection that went silent
                if self.mode == "delay" and self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not writer.is_closing():
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    writer.close()

    def _forget(self, writer: asyncio.StreamWriter) -> None:
        self._open.discard(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a crashed peer's kernel would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.close()
