"""MLLP framing: the decoder on its own, then a real server and client on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from naho.interop.mllp import FrameTooLarge, MllpDecoder, MllpError, frame, send, serve_mllp, stop_mllp
from tests.conftest import free_port

T = TypeVar("T")
END = b"\x1c\r"


class ServerThread:
    """An MLLP server in its own thread and event loop, as the app runs it beside the web server."""

    def __init__(self, start: Callable[[int], Awaitable[asyncio.Server]]) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mllp-test", daemon=True)
        self.thread.start()
        self.server = self.run(start(self.port))

    def run(self, coro: Coroutine[Any, Any, T] | Awaitable[T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def send(self, message: bytes | str, timeout: float = 10) -> bytes:
        return self.run(send("127.0.0.1", self.port, message, timeout), timeout + 5)

    def close(self) -> None:
        self.run(stop_mllp(self.server))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


def receive_frames(sock: socket.socket, count: int, timeout: float = 10) -> list[bytes]:
    sock.settimeout(timeout)
    data = b""
    while data.count(END) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return [part.lstrip(b"\x0b") for part in data.split(END) if part]


# --- the decoder ------------------------------------------------------------------------------------

def test_a_frame_cut_anywhere_is_put_back_together() -> None:
    wire = frame(b"MSH|first\rPID|1")
    for cut in range(1, len(wire)):
        decoder = MllpDecoder()
        assert decoder.feed(wire[:cut]) + decoder.feed(wire[cut:]) == [b"MSH|first\rPID|1"]
        assert decoder.take_discarded() == 0 and not decoder.pending


def test_several_frames_in_one_read_come_out_in_order() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(frame(b"one") + frame(b"two") + frame(b"thr")[:3]) == [b"one", b"two"]
    assert decoder.feed(frame(b"thr")[3:]) == [b"thr"]


def test_bytes_outside_a_frame_are_dropped_and_counted() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"noise" + frame(b"kept") + b"\r\n") == [b"kept"]
    assert decoder.take_discarded() == 5


def test_a_frame_that_starts_again_before_its_end_is_abandoned() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0bhalf a mess" + frame(b"whole")) == [b"whole"]
    assert decoder.take_discarded() == len(b"half a mess")


def test_a_frame_without_end_is_refused_past_the_limit() -> None:
    decoder = MllpDecoder(max_frame=10)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\x0b" + b"x" * 11)


# --- server and client on loopback ------------------------------------------------------------------

async def _echo(message: bytes, peer: str) -> bytes:
    assert peer == "127.0.0.1"
    return b"ACK:" + message


@pytest.fixture
def echo() -> Iterator[ServerThread]:
    server = ServerThread(lambda port: serve_mllp(_echo, "127.0.0.1", port, max_frame=1000))
    yield server
    server.close()


def test_the_client_gets_the_reply_to_its_message(echo: ServerThread) -> None:
    assert echo.send("MSH|é") == "ACK:MSH|é".encode()


def test_a_message_split_across_tcp_writes_gets_one_reply(echo: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", echo.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for part in (b"\x0bMSH|par", b"tial\rPID|", b"1\x1c", b"\r"):
            sock.sendall(part)
            time.sleep(0.05)
        assert receive_frames(sock, 1) == [b"ACK:MSH|partial\rPID|1"]


def test_two_messages_on_one_connection_get_two_replies_in_order(echo: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", echo.port)) as sock:
        sock.sendall(frame(b"first") + frame(b"second"))
        assert receive_frames(sock, 2) == [b"ACK:first", b"ACK:second"]
        sock.sendall(frame(b"third"))  # the connection stays open for the next message
        assert receive_frames(sock, 1) == [b"ACK:third"]


def test_noise_before_a_frame_is_ignored(echo: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", echo.port)) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n" + frame(b"real"))
        assert receive_frames(sock, 1) == [b"ACK:real"]


def test_an_endless_frame_closes_the_connection(echo: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", echo.port)) as sock:
        sock.sendall(b"\x0b" + b"x" * 2000)
        sock.settimeout(10)
        assert sock.recv(100) == b""  # closed, no reply


def test_a_failing_handler_closes_without_reply_so_the_sender_retries() -> None:
    async def broken(message: bytes, peer: str) -> bytes:
        raise RuntimeError("database away")

    server = ServerThread(lambda port: serve_mllp(broken, "127.0.0.1", port))
    try:
        with pytest.raises(MllpError):
            server.send(b"MSH|x")
    finally:
        server.close()


def test_stopping_ends_idle_connections() -> None:
    server = ServerThread(lambda port: serve_mllp(_echo, "127.0.0.1", port))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(frame(b"hello"))
        assert receive_frames(sock, 1) == [b"ACK:hello"]
        server.close()  # the connection is idle: closed at once
        sock.settimeout(10)
        assert sock.recv(100) == b""
