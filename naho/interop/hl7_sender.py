"""naho's own ADT messages out over MLLP: outbox envelope (topic "hl7.adt") → PAM FR → receiver.

record.service puts a snapshot of each movement in the outbox, in the movement's transaction
(identity.service does the same for identity changes); the outbox worker calls the handler made
here outside any transaction. MSH-10 is derived from the envelope id (`control_id_of`: 20
characters, the most HL7 v2.5 allows an ST there), the same on every attempt, so a receiver
that dedupes on (sender, MSH-10), as naho's own listener does, takes a redelivered message
once. MSH-5 / MSH-6 come from `hl7_receiving_application` / `hl7_receiving_facility`. The
handler returns only on an AA (or CA) naming our MSH-10 in MSA-2; an AE, an AR, a timeout or a
lost connection raises, and the outbox tries again with backoff, then marks the message dead
(page /admin/outbox).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import hl7 as python_hl7

from naho.config import Settings
from naho.interop.mllp import send
from naho.platform.clock import Clock, SystemClock
from naho.platform.outbox import Envelope, Handler
from naho.record import hl7 as adt
from naho.record.service import ADT_TOPIC

TOPIC = ADT_TOPIC
ACCEPTED = frozenset({"AA", "CA"})


class AdtNotAccepted(RuntimeError):
    """The receiver answered, but not with an acceptance of this message."""


#: MSH-10 is an ST of at most 20 characters in HL7 v2.5 (§2.14.9.10).
CONTROL_ID_LENGTH = 20


def control_id_of(envelope_id: uuid.UUID) -> str:
    """MSH-10 of the message of an outbox envelope: the first 20 characters of the id in base 32
    (100 bits, uppercase letters and digits). Derived, not stored: every retry sends the same."""
    return base64.b32encode(envelope_id.bytes).decode("ascii")[:CONTROL_ID_LENGTH]


def destination(value: str) -> tuple[str, int]:
    """"host:port" (or "[v6 address]:port") → (host, port)."""
    host, _, port = value.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"hl7_adt_destination {value!r} is not host:port")
    return host.strip("[]"), int(port)


def read_ack(reply: bytes) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 the message it answers, the reason of a refusal) of an acknowledgement
    (ACK, or an application acknowledgement such as ORL); AdtNotAccepted if it is not one."""
    text, _codec = adt.decode(reply)
    try:
        message = python_hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r").strip())
        msa = message.segment("MSA")
    except Exception as exc:  # python-hl7 raises ParseException, KeyError…
        raise AdtNotAccepted(f"the reply is not an HL7 acknowledgement ({type(exc).__name__})") from exc
    code, acked, reason = _field(msa, 1), _field(msa, 2), ""
    if code not in ACCEPTED:
        try:
            reason = _field(message.segment("ERR"), 8)
        except KeyError:
            reason = ""
        reason = reason or _field(msa, 3) or "no reason given"  # MSA-3, deprecated, still often filled
    return code or "no MSA-1", acked, reason


def check_ack(reply: bytes, control_id: str) -> None:
    """Return if `reply` accepts message `control_id`; raise AdtNotAccepted otherwise."""
    code, acked, reason = read_ack(reply)
    if code not in ACCEPTED:
        raise AdtNotAccepted(f"{code}: {reason}")
    if acked != control_id:
        raise AdtNotAccepted(f"the acknowledgement names message {acked!r}, not {control_id!r}")


def _field(segment: Any, field: int) -> str:
    try:
        return str(segment.extract_field(1, field, 1, 1, 1)).strip()
    except (IndexError, KeyError):
        return ""


def make_adt_handler(settings: Settings, *, clock: Clock | None = None, timeout: float = 10.0) -> Handler:
    """The outbox handler of topic "hl7.adt", sending to `settings.hl7_adt_destination`."""
    host, port = destination(settings.hl7_adt_destination)
    zone = ZoneInfo(settings.timezone)
    clock = clock or SystemClock()

    def deliver(envelope: Envelope) -> None:
        control_id = control_id_of(envelope.id)
        message = adt.build_adt(envelope.payload, control_id=control_id,
                                sending_application=settings.hl7_application,
                                sending_facility=settings.hl7_facility, now=clock.now(), zone=zone,
                                receiving_application=settings.hl7_receiving_application,
                                receiving_facility=settings.hl7_receiving_facility)
        # The worker runs in a thread of its own: one short event loop per message.
        reply = asyncio.run(send(host, port, message, timeout))
        check_ack(reply, control_id)

    return deliver
