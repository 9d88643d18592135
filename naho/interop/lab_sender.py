"""naho's laboratory orders out over MLLP: outbox envelope (topic "hl7.lab-order") → OML^O21
(results.hl7_orders) → the laboratory system at `hl7_lab_destination`.

As the ADT sender: MSH-10 derives from the envelope id, the same on every attempt, so the
laboratory recognises a retry. The acknowledgement (ACK or ORL^O22, MSA-1) is reported to the
order (results.orders.record_answer) in a transaction of its own: AA accepts, AE / AR put the
order in error, shown on the patient's orders page. Anything but an acceptance raises, so the
outbox tries again with backoff and finally marks the message dead (page /admin/outbox). A
connection refused or a timeout raises before any answer: the order stays "pending".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from zoneinfo import ZoneInfo

from naho.config import Settings
from naho.interop.hl7_sender import ACCEPTED, control_id_of, destination, read_ack
from naho.interop.mllp import send
from naho.platform.clock import Clock
from naho.platform.outbox import Envelope, Handler
from naho.platform.uow import UnitOfWork
from naho.results import orders
from naho.results.hl7_orders import build_oml

TOPIC = orders.TOPIC


class LabOrderNotAccepted(RuntimeError):
    """The laboratory answered, but not with an acceptance of this message."""


def make_lab_order_handler(settings: Settings, uow: Callable[[], UnitOfWork], clock: Clock, *,
                           timeout: float = 10.0) -> Handler:
    """The outbox handler of topic "hl7.lab-order", sending to `settings.hl7_lab_destination`."""
    host, port = destination(settings.hl7_lab_destination)
    zone = ZoneInfo(settings.timezone)

    def deliver(envelope: Envelope) -> None:
        control_id = control_id_of(envelope.id)
        payload = envelope.payload
        message = build_oml(payload, control_id=control_id, sending_application=settings.hl7_application,
                            sending_facility=settings.hl7_facility, now=clock.now(), zone=zone,
                            receiving_application=settings.hl7_lab_receiving_application,
                            receiving_facility=settings.hl7_lab_receiving_facility)
        reply = asyncio.run(send(host, port, message, timeout))  # the worker's thread: one short loop
        code, acked, reason = read_ack(reply)
        if acked != control_id:
            raise LabOrderNotAccepted(f"the acknowledgement names message {acked!r}, not {control_id!r}")
        orders.record_answer(uow(), uuid.UUID(payload["order_id"]), payload["action"], code, reason)
        if code not in ACCEPTED:
            raise LabOrderNotAccepted(f"{code}: {reason}")

    return deliver
