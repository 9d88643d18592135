"""A local SMTP sink (aiosmtpd) for the demo, the tests and the benchmark: it keeps what it
receives, as an idempotent receiver would, by Message-ID.

Each accepted message is written to `<directory>/<sha256 of its Message-ID>.eml` (a redelivered
message overwrites its first copy: the store counts letters, not attempts) and one line
`<Message-ID>` is appended to `<directory>/deliveries.log` per delivery (that log counts
attempts), both flushed to disk before the 250 reply. Run in a separate process, it can be
killed with SIGKILL mid-queue: `python -m naho.messaging.sink --port 2525 --directory DIR`.
aiosmtpd is a development dependency: production sends to a real relay.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class SinkHandler:
    """aiosmtpd handler: store by Message-ID, log every delivery; optional refusals by address."""

    def __init__(self, directory: Path, refuse: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}
        #: A reply to every DATA instead of storing (e.g. "554 5.6.0 content refused").
        self.reject_data: str | None = None
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tls_sessions = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_data:
            return self.reject_data
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode("utf-8")
        message_id = str(email.message_from_bytes(data, policy=email.policy.SMTP).get("Message-ID", "")).strip()
        if not message_id:
            return "554 5.6.0 a Message-ID is required"
        if getattr(session, "ssl", None):
            self.tls_sessions += 1
        target = self.directory / f"{hashlib.sha256(message_id.encode()).hexdigest()}.eml"
        partial = target.with_suffix(".part")
        with partial.open("wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        partial.replace(target)
        with (self.directory / "deliveries.log").open("a", encoding="utf-8") as log:
            log.write(message_id + "\n")
            log.flush()
            os.fsync(log.fileno())
        return "250 OK stored"


def stored(directory: Path) -> dict[str, bytes]:
    """The messages kept, by Message-ID (one per letter, whatever the attempts)."""
    found = {}
    for path in sorted(directory.glob("*.eml")):
        data = path.read_bytes()
        found[str(email.message_from_bytes(data, policy=email.policy.SMTP)["Message-ID"]).strip()] = data
    return found


def deliveries(directory: Path) -> list[str]:
    """Every delivery, in order (a Message-ID twice: the relay got the same letter twice)."""
    log = directory / "deliveries.log"
    return log.read_text(encoding="utf-8").split() if log.exists() else []


class SinkProcess:
    """The sink in a child process (its own interpreter), to be killed with SIGKILL mid-queue."""

    def __init__(self, port: int, directory: Path, python: str = sys.executable) -> None:
        self.port, self.directory, self.python = port, directory, python
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [self.python, "-m", "naho.messaging.sink", "--port", str(self.port), "--directory", str(self.directory)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        line = b""
        deadline = time.monotonic() + timeout
        while not line.startswith(b"ready") and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError("the SMTP sink did not start")

    def kill(self) -> None:
        """SIGKILL: no goodbye to the client in the middle of its conversation."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, how: signal.Signals) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(how)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def repeating(function: Callable[[], object], pause: float = 0.01) -> Iterator[None]:
    """Call `function` again and again in a thread (an outbox worker's loop) until the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            function()
            time.sleep(pause)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def main() -> None:
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--directory", type=Path, required=True)
    args = parser.parse_args()
    controller = Controller(SinkHandler(args.directory), hostname=args.host, port=args.port)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
