"""HTTP + websocket transport on raw asyncio streams (h11 parsing, websockets Sans-I/O).

One request per TCP connection (``Connection: close``); a request carrying a websocket upgrade
(any path) becomes a websocket session. A semaphore of ``worker_threads`` permits is shared by
HTTP requests and open websockets, like Hanami's fixed worker pool (§1.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from http import HTTPStatus

import h11
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from . import endpoints  # noqa: F401 - registers the routes
from .backend import Backend
from .config import EmulatorConfig
from .pipeline import Pipeline
from .response import Response
from .websocket import CLOSE_WS, DROP_TCP, NO_REPLY, Session

log = logging.getLogger(__name__)

MAX_HEADER = 8 * 1024
MAX_BODY = 1024 * 1024
READ_TIMEOUT = 60.0
WS_SERVER_HEADER = "Boost.Beast/351 torii-websocket-ssl"


def _raw_response(resp: Response) -> bytes:
    reason = HTTPStatus(resp.status).phrase
    head = (f"HTTP/1.1 {resp.status} {reason}\r\nServer: ToriiGateway\r\n"
            f"Content-Type: {resp.content_type}\r\nContent-Length: {len(resp.body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode("latin-1") + resp.body


class HanamiServer:
    """The asyncio side: accepts connections, runs the pipeline, hosts websocket sessions."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.config = backend.config
        self.pipeline = Pipeline(backend)
        self.workers = asyncio.Semaphore(self.config.worker_threads)
        self.server: asyncio.base_events.Server | None = None
        self._expiry: asyncio.Task | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, self.config.host, self.config.port,
                                                 reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        self._expiry = asyncio.get_running_loop().create_task(self._expiry_loop())

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tempfile_check_interval)
            for uuid in self.backend.tempfiles.tick():
                await asyncio.to_thread(self.backend.store.delete, "tempfiles", uuid)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with self.workers:
                await self._connection(reader, writer)
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception:  # noqa: BLE001 - the server itself never dies
            log.exception("connection failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_HEADER:
                return  # header too large: dropped without response
            chunk = await asyncio.wait_for(reader.read(65536), READ_TIMEOUT)
            if not chunk:
                return
            buf += chunk
        head = buf.split(b"\r\n\r\n", 1)[0]
        if len(head) > MAX_HEADER:
            return
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER + 4)
        conn.receive_data(buf)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            writer.write(_raw_response(Response.text(400)))
            return
        if not isinstance(event, h11.Request):
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        if "websocket" in headers.get("upgrade", "").lower():
            await self._websocket(buf, reader, writer)
            return
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            return  # body too large: dropped without response
        body = b""
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError:
                return
            if ev is h11.NEED_DATA:
                chunk = await asyncio.wait_for(reader.read(65536), READ_TIMEOUT)
                if not chunk:
                    conn.receive_data(b"")
                    if conn.their_state is h11.ERROR:
                        return
                    continue
                conn.receive_data(chunk)
            elif isinstance(ev, h11.Data):
                body += ev.data
                if len(body) > MAX_BODY:
                    return
            elif isinstance(ev, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
            else:
                break
        method = event.method.decode("latin-1").upper()
        target = event.target.decode("latin-1")
        resp = await asyncio.to_thread(self.pipeline.handle, method, target, headers, body)
        if resp.close_without_reply:
            writer.transport.abort()
            return
        writer.write(_raw_response(resp))
        await writer.drain()

    async def _websocket(self, buf: bytes, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        proto = ServerProtocol(max_size=4 * MAX_BODY)
        head, rest = buf.split(b"\r\n\r\n", 1)
        proto.receive_data(head + b"\r\n\r\n")
        response = proto.accept(proto.events_received()[0])
        response.headers["Server"] = WS_SERVER_HEADER
        proto.send_response(response)
        if not await self._flush(proto, writer) or proto.state is not State.OPEN:
            return
        session = Session(self.backend)
        parts: list[bytes] = []
        pending = []
        if rest:  # frames that arrived together with the handshake
            proto.receive_data(rest)
            pending = proto.events_received()
        try:
            while proto.state is not State.CLOSED:
                data = b"-"
                if not pending:
                    data = await reader.read(65536)
                    if data:
                        proto.receive_data(data)
                    else:
                        proto.receive_eof()
                    pending = proto.events_received()
                frames, pending = pending, []
                for frame in frames:
                    if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                        continue  # ping/pong/close are answered by the protocol object
                    parts.append(bytes(frame.data))
                    if not frame.fin:
                        continue
                    message, parts = b"".join(parts), []
                    action = await session.handle(message)
                    if action is DROP_TCP:
                        writer.transport.abort()
                        return
                    if action is CLOSE_WS:
                        proto.send_close()
                    elif action is not NO_REPLY and proto.state is State.OPEN:
                        proto.send_binary(action)
                if not await self._flush(proto, writer) or not data:
                    return
        finally:
            session.close()

    @staticmethod
    async def _flush(proto: ServerProtocol, writer: asyncio.StreamWriter) -> bool:
        for chunk in proto.data_to_send():
            if chunk == b"":
                return False  # the protocol asks to close the TCP connection
            writer.write(chunk)
        await writer.drain()
        return True


async def serve(config: EmulatorConfig) -> None:
    """Run the emulator in the current event loop until cancelled (used by the CLI)."""
    backend = await asyncio.to_thread(Backend, config)
    backend.start()
    server = HanamiServer(backend)
    await server.start()
    log.info("Hanami emulator listening on http://%s:%d", config.host, server.port)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
        backend.close()


class EmulatorServer:
    """The emulator in its own thread with its own event loop."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.backend: Backend | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: HanamiServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self._host()}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host()}:{self.port}"

    def _host(self) -> str:
        host = self.config.host
        return "127.0.0.1" if host in ("0.0.0.0", "") else host

    def start(self) -> None:
        """Returns when the server is listening (raises StartupError etc. on failure)."""
        self.backend = Backend(self.config)
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._server = HanamiServer(self.backend)
                self._loop.run_until_complete(self._server.start())
                self.port = self._server.port
            except BaseException as err:  # noqa: BLE001
                failure.append(err)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="HttpServer", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self.backend.close()
            raise failure[0]
        self.backend.start()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._server is not None:
            fut = asyncio.run_coroutine_threadsafe(self._server.close(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if self.backend is not None:
            self.backend.close()
        self._loop = None

    def __enter__(self) -> "EmulatorServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
