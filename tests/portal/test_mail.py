"""Patient mails through a real SMTP server on loopback (aiosmtpd): the reminder reaches the
patient's verified address with an .ics, says when and where, and nothing medical; nothing
leaves for an unverified address."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from naho.config import Settings
from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.platform.outbox import Envelope, OutboxMessage
from naho.portal import mail
from naho.portal import service as portal
from naho.scheduling import service as scheduling
from tests.conftest import free_port
from tests.scheduling.world import cardiology, new_patient, portal_account, staff_actor

controller_module = pytest.importorskip("aiosmtpd.controller")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = controller_module.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def _deliver(container: Container, settings: Settings, topic: str) -> None:
    handler = mail.make_mail_handler(settings, container.session_factory, container.clock)
    with container.uow() as uow:
        envelopes = [Envelope(row.id, row.topic, row.payload, 1)
                     for row in uow.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic))]
    for envelope in envelopes:
        handler(envelope)


def test_a_reminder_reaches_the_verified_address_with_a_calendar_file_and_no_health_data(
        container: Container, clock: FixedClock, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = Settings(mode="test", database_url=container.settings.database_url, portal_smtp_host="127.0.0.1",
                        portal_smtp_port=port, public_url="https://portail.ght-artois.fr")
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    verified, unverified = new_patient(container), new_patient(container, "DURAND", "PAUL")
    portal_account(container, clerk, verified, "lucie@example.org")
    with container.uow() as uow:
        token = next(m.payload["token"] for m in uow.session.scalars(select(OutboxMessage))
                     if m.payload.get("to") == "lucie@example.org")
    portal.verify_email(container.uow(), token, address="192.0.2.1")
    with container.uow() as uow:
        slots = scheduling.search_slots(uow.session, now=clock.now(), limit=2)
    for slot, patient in zip(slots, (verified, unverified), strict=True):
        scheduling.book(container.uow(), clerk, slot.id, patient, container.ports["care"])
    clock.advance(days=4)
    assert scheduling.queue_due_reminders(container.uow()) == 2
    _deliver(container, settings, "mail.reminder")
    assert len(inbox.messages) == 1  # the unverified address gets nothing
    to, message = inbox.messages[0]
    assert to == ["lucie@example.org"]
    body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "30/11/2026 08:30" in body and "Bâtiment B" in body and "https://portail.ght-artois.fr/portail" in body
    ics = next(p for p in message.iter_attachments() if p.get_content_type() == "text/calendar")
    calendar = ics.get_content()
    assert "DTSTART:20261130T073000Z" in calendar
    everything = message.as_string().lower()
    assert "cardio" not in everything and "consultation" not in everything and "martin" not in everything
