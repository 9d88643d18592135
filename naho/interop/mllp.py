"""MLLP, the framing of HL7 v2 over TCP: <VT> message <FS><CR>, one reply per message, in order.

Transport only (STYLE.md R4): bytes in, bytes out. What a message means, and what to answer,
is the handler's business (naho/interop/hl7_listener.py with naho/record/hl7.py), as python-hl7
keeps `hl7/mllp/streams.py` apart from its parser.

Senders keep one connection open and wait for each acknowledgement before the next message
(HL7 original mode), but TCP may cut a frame anywhere or glue several together: the decoder
takes bytes as they come. Bytes outside a frame are dropped and logged; a frame that starts
again before it ended was abandoned by the sender and is dropped too; a frame larger than
`max_frame` closes the connection (no reply can be sent for it). If the handler fails, the
connection is closed without a reply, so the sender sends the message again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
#: Larger than any ADT message; a frame beyond this is a misbehaving peer.
MAX_FRAME = 1 << 20
_READ_SIZE = 64 * 1024
_BLANKS = frozenset(b"\r\n \t")

#: Receives one message (without framing) and the peer's address; returns the reply to frame.
Handler = Callable[[bytes, str], Awaitable[bytes]]


class MllpError(Exception):
    """The peer broke the framing or went away before answering."""


class FrameTooLarge(MllpError):
    """A frame grew beyond `max_frame` bytes without its end block."""


def frame(message: bytes) -> bytes:
    """Wrap one message in its start and end blocks."""
    return START_BLOCK + message + END_BLOCK + CARRIAGE_RETURN


class MllpDecoder:
    """Sans-IO decoder: `feed` bytes as they arrive, get back the messages completed so far."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._in_frame = False
        #: Bytes dropped since the last `take_discarded` (outside a frame, or an abandoned frame).
        self.discarded = 0

    @property
    def pending(self) -> bool:
        """A frame has started and not ended."""
        return self._in_frame

    def take_discarded(self) -> int:
        count, self.discarded = self.discarded, 0
        return count

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages: list[bytes] = []
        while self._buffer:
            if not self._in_frame:
                start = self._buffer.find(START_BLOCK)
                outside = self._buffer if start < 0 else self._buffer[:start]
                # The CR after an end block (or a stray newline) is not noise worth reporting.
                self.discarded += sum(1 for byte in outside if byte not in _BLANKS)
                if start < 0:
                    self._buffer.clear()
                    break
                del self._buffer[:start + 1]
                self._in_frame = True
            end = self._buffer.find(END_BLOCK)
            restart = self._buffer.find(START_BLOCK)
            if restart >= 0 and (end < 0 or restart < end):
                self.discarded += restart
                del self._buffer[:restart]
                self._in_frame = False
                continue
            if end < 0:
                if len(self._buffer) > self.max_frame:
                    raise FrameTooLarge(f"no end block after {len(self._buffer)} bytes")
                break
            messages.append(bytes(self._buffer[:end]))
            del self._buffer[:end + 1]
            self._in_frame = False
        return messages


class _Connections:
    """The open connections of one server, and whether each is handling a message."""

    def __init__(self) -> None:
        self.busy: dict[asyncio.Task[None], bool] = {}
        self.closing = False


# asyncio.Server.close only stops listening (before Python 3.13): `stop_mllp` ends the connections.
_SERVERS: weakref.WeakKeyDictionary[asyncio.Server, _Connections] = weakref.WeakKeyDictionary()


async def serve_mllp(handler: Handler, host: str, port: int, *, max_frame: int = MAX_FRAME) -> asyncio.Server:
    """Listen on host:port; call `handler` for each message, one at a time per connection, and
    send back its reply framed. Stop with `stop_mllp(server)`."""
    connections = _Connections()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.busy[task] = False
        address = writer.get_extra_info("peername")
        peer = str(address[0]) if isinstance(address, tuple) else str(address or "")
        decoder = MllpDecoder(max_frame)
        try:
            while not connections.closing and (data := await reader.read(_READ_SIZE)):
                messages = decoder.feed(data)
                if dropped := decoder.take_discarded():
                    log.warning("MLLP %s: %d bytes outside any frame dropped", peer, dropped)
                connections.busy[task] = True
                for message in messages:
                    reply = await handler(message, peer)
                    writer.write(frame(reply))
                    await writer.drain()
                connections.busy[task] = False
            if decoder.pending:
                log.warning("MLLP %s: connection closed in the middle of a message", peer)
        except FrameTooLarge as exc:
            log.warning("MLLP %s: %s; connection closed", peer, exc)
        except ConnectionError as exc:
            log.info("MLLP %s: connection lost (%s)", peer, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            # No acknowledgement: the sender keeps the message and sends it again.
            log.exception("MLLP %s: a message could not be handled; connection closed without reply", peer)
        finally:
            connections.busy.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(on_connection, host, port)
    _SERVERS[server] = connections
    return server


async def stop_mllp(server: asyncio.Server, *, grace: float = 5.0) -> None:
    """Stop listening and close the connections: idle ones at once, those handling a message
    once it is acknowledged (up to `grace` seconds; past that, the sender will send it again)."""
    server.close()
    connections = _SERVERS.get(server)
    if connections is not None:
        connections.closing = True
        busy = [task for task, handling in connections.busy.items() if handling]
        for task, handling in list(connections.busy.items()):
            if not handling:
                task.cancel()
        if busy:
            await asyncio.wait(busy, timeout=grace)
        leftovers = list(connections.busy)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
    await server.wait_closed()


async def send(host: str, port: int, message: bytes | str, timeout: float = 10.0) -> bytes:
    """Send one message and return the reply (unframed): a small client for tests and tools.

    A `str` is sent as UTF-8. Raises `MllpError` if the peer closes without answering and
    `TimeoutError` after `timeout` seconds.
    """
    payload = message.encode("utf-8") if isinstance(message, str) else message
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(frame(payload))
            await writer.drain()
            decoder = MllpDecoder()
            while data := await reader.read(_READ_SIZE):
                replies = decoder.feed(data)
                if replies:
                    return replies[0]
            raise MllpError("the peer closed the connection without an acknowledgement")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
