"""Sending a chart document to the patient's correspondents: through the door, with the
patient's consent, sealed for the chosen recipients only, queued in the outbox with its letter;
the status follows the relay, then the DSN and MDN that come back."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naho.app import create_app
from naho.config import Settings
from naho.identity import service as identity
from naho.messaging import consent, correspondents, directory, rules, sending, smime, xdm
from naho.messaging.errors import PkiConfigurationInvalid
from naho.messaging.models import Letter
from naho.messaging.pki import Identity, TestAuthority, certificate_pem
from naho.platform.audit import AuditEvent
from naho.platform.clock import FixedClock
from naho.platform.outbox import OutboxMessage, OutboxWorker
from naho.platform.security.actor import SYSTEM_ACTOR, Actor
from naho.platform.security.rules import Role
from naho.platform.security.service import create_account, create_api_token
from naho.platform.uow import UnitOfWork
from naho.staff import service as staff
from tests.conftest import free_port
from tests.personas import CLERK, NURSE, PHYSICIAN, PORTER, csrf_from, form_token, login

GROUP_MAILBOX = "secretariat@ght-artois.mssante.fr"
PDF = b"%PDF-1.4\n% lettre de liaison de test\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
#: Two GPs of the sample extract with a secure mailbox, and one without.
GP = "19990000001"  # Camille LECOMTE, Béthune
OTHER_GP = "19990000002"  # Agathe DUPUIS, Lens


@dataclass
class Messaging:
    """The group's mailbox and professionals' identities issued by one local test authority."""

    authority: TestAuthority
    group: Identity
    professionals: dict[str, Identity]  # by RPPS
    files: Path


def make_pki(now, directory_path: Path, mailboxes: dict[str, str]) -> Messaging:  # type: ignore[no-untyped-def]
    authority = TestAuthority("GHT Artois Test", now)
    group = authority.issue_organisation(GROUP_MAILBOX, "GHT Artois")
    authority.write(directory_path, "group", group)
    professionals = {rpps: authority.issue_professional(address, rpps, "Cabinet", rpps=rpps)
                     for rpps, address in mailboxes.items()}
    for rpps, holder in professionals.items():
        authority.write(directory_path, f"pro-{rpps}", holder)
    return Messaging(authority, group, professionals, directory_path)


def messaging_settings(db_url: str, pki: Messaging, smtp_port: int, **changes: object) -> Settings:
    values: dict[str, object] = dict(
        mode="test", database_url=db_url, workers=False, messaging_smtp_host="127.0.0.1",
        messaging_smtp_port=smtp_port, messaging_certificate=pki.files / "group.crt",
        messaging_private_key=pki.files / "group.key", messaging_trust_anchors=str(pki.files / "ca.crt"))
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def sample_mailboxes() -> dict[str, str]:
    with directory.SAMPLE_EXTRACT.open(encoding="utf-8") as stream:
        parsed = rules.parse_extract(stream)
    return {e.rpps: e.mss_address for e in parsed.entries if e.mss_address}


def load_directory(uow: UnitOfWork, pki: Messaging) -> dict[str, uuid.UUID]:
    """The sample extract, with the certificates of the professionals the test authority knows."""
    with uow:
        now = uow.clock.now()
        with directory.SAMPLE_EXTRACT.open(encoding="utf-8") as stream:
            directory.store_extract(uow.session, stream, now=now)
        ids = {}
        for rpps, identity in pki.professionals.items():
            ids[rpps] = directory.set_certificate(uow.session, rpps, certificate_pem(identity.certificate),
                                                  now=now).id
        uow.commit()
        return ids


def admit(client: TestClient, unit: str = "LENS-MED-MIN", name: str = "Deprez", born: str = "1937-11-08") -> str:
    """A patient admitted by the admission desk into the demo physician's and nurse's unit."""
    login(client, CLERK)
    token = form_token(client)
    patient = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": name, "first_names": "Lucien", "sex": "M", "birth_date": born}).json()["id"]
    response = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient, "establishment_code": "LENS", "encounter_class": "inpatient", "unit_code": unit})
    assert response.status_code in (200, 201), response.text
    return str(patient)


def post(client: TestClient, path: str, data: dict[str, object], **kwargs: object):  # type: ignore[no-untyped-def]
    page = client.get("/accueil").text
    return client.post(path, data={**data, "csrf_token": csrf_from(page)}, follow_redirects=False,
                       **kwargs)  # type: ignore[arg-type]


def file_document(client: TestClient, patient: str, content: bytes = PDF, title: str = "Lettre de liaison") -> str:
    response = post(client, f"/patients/{patient}/documents", {"title": title},
                    files={"file": ("lettre.pdf", content, "application/pdf")})
    assert response.status_code == 303 and "erreur" not in response.headers["location"], response.headers
    page = client.get(f"/patients/{patient}").text
    return page.split('id="documents"')[1].split('href="/documents/')[1].split('"')[0]


def attach(client: TestClient, patient: str, professional: uuid.UUID, role: str = "gp") -> None:
    response = post(client, f"/patients/{patient}/correspondants", {"professional_id": str(professional), "role": role})
    assert response.headers["location"] == f"/patients/{patient}/correspondants", response.headers["location"]


def send(client: TestClient, patient: str, document: str, *recipients: uuid.UUID):  # type: ignore[no-untyped-def]
    return post(client, f"/patients/{patient}/courriers",
                {"document_id": document, "professional_id": [str(r) for r in recipients]})


def letters(uow_factory: Callable[[], UnitOfWork]) -> list[Letter]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(Letter).order_by(Letter.number)))
        uow.session.expunge_all()
        return rows


class Setup:
    """A configured app on a fresh database, the directory loaded, a patient with a PDF."""

    def __init__(self, db_url: str, clock: FixedClock, tmp_path: Path, smtp_port: int | None = None,
                 **settings: object) -> None:
        self.clock = clock
        self.smtp_port = smtp_port or free_port()
        self.pki = make_pki(clock.now(), tmp_path / "pki", {GP: sample_mailboxes()[GP],
                                                             OTHER_GP: sample_mailboxes()[OTHER_GP]})
        self.settings = messaging_settings(db_url, self.pki, self.smtp_port, **settings)
        self.app = create_app(self.settings, clock=clock)
        container = self.app.state.container
        self.uow = container.uow
        self.ids = load_directory(self.uow(), self.pki)
        self.handlers = container.ports["outbox_handlers"]

    def worker(self, **options: float) -> OutboxWorker:
        container = self.app.state.container
        return OutboxWorker(container.session_factory, self.clock, self.handlers, **options)  # type: ignore[arg-type]

    def close(self) -> None:
        self.app.state.container.engine.dispose()


def configured(db_url: str, clock: FixedClock, tmp_path: Path, **settings: object) -> Iterator[Setup]:
    """For the fixtures of the messaging tests: a Setup, closed afterwards."""
    made = Setup(db_url, clock, tmp_path, **settings)
    yield made
    made.close()


def client_of(setup: Setup) -> Iterator[TestClient]:
    with TestClient(setup.app, base_url="http://testserver") as test_client:
        yield test_client


# Named apart from their fixture names so that other modules import them without shadowing.
@pytest.fixture(name="setup")
def setup_fixture(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[Setup]:
    yield from configured(db_url, clock, tmp_path)


@pytest.fixture(name="web")
def web_fixture(setup: Setup) -> Iterator[TestClient]:
    yield from client_of(setup)


@pytest.fixture
def patient_with_letter(web: TestClient, setup: Setup) -> tuple[str, str]:
    """(patient, document): the physician filed a PDF and attached the GP."""
    patient = admit(web)
    login(web, PHYSICIAN)
    document = file_document(web, patient)
    attach(web, patient, setup.ids[GP])
    return patient, document


# --- the use case --------------------------------------------------------------------------------

def test_a_physician_sends_a_document_sealed_for_the_gp_and_queued_with_its_letter(
        web: TestClient, setup: Setup, patient_with_letter: tuple[str, str]) -> None:
    patient, document = patient_with_letter
    response = send(web, patient, document, setup.ids[GP])
    assert response.headers["location"].endswith("?envoye=1"), response.headers["location"]
    (letter,) = letters(setup.uow)
    assert letter.status == "queued" and letter.recipients[0]["address"] == sample_mailboxes()[GP]
    assert letter.message_id == smime.message_id(str(letter.id), "ght-artois.mssante.fr")
    with setup.uow() as uow:  # one outbox message, in the letter's transaction
        message = uow.session.get(OutboxMessage, letter.outbox_id)
        assert message is not None and message.payload == {"letter_id": str(letter.id)}
        actions = set(uow.session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == uuid.UUID(patient))))
    assert {"patient:letter:send", "patient:document:view"} <= actions

    # The GP, and only the GP (and our own mailbox), can open it; the XDM carries the same PDF.
    opened = smime.open_message(letter.raw, recipient=setup.pki.professionals[GP],
                                trust_anchors=[setup.pki.authority.certificate], now=setup.clock.now())
    assert opened.sender == GROUP_MAILBOX
    package = next(a.data for a in opened.attachments() if a.filename == "IHE_XDM.ZIP")
    (submission,) = xdm.unpack(package)
    assert submission.documents[0].data == PDF and submission.documents[0].title == "Lettre de liaison"
    assert submission.patient_id.endswith("&ISO^PI")  # provisional identity: the IPP, not the INS
    outer = email.message_from_bytes(letter.raw, policy=email.policy.SMTP)
    assert outer["Disposition-Notification-To"] == GROUP_MAILBOX
    assert not [name for name in outer if name.upper().startswith("X-MSS-")]  # a PDF: no CDA code
    with pytest.raises(Exception, match="not encrypted for our certificate"):
        smime.open_message(letter.raw, recipient=setup.pki.professionals[OTHER_GP],
                           trust_anchors=[setup.pki.authority.certificate], now=setup.clock.now())

    page = web.get(f"/patients/{patient}/correspondants").text
    assert 'data-status="queued"' in page.split('id="letters"')[1]


def test_the_patient_objection_refuses_the_send_and_its_withdrawal_allows_it(
        web: TestClient, setup: Setup, patient_with_letter: tuple[str, str]) -> None:
    patient, document = patient_with_letter
    post(web, f"/patients/{patient}/opposition", {"objects": "oui", "reason": "souhait exprimé à l'entrée"})
    page = web.get(f"/patients/{patient}/correspondants").text
    assert "souhait exprimé" in page.split('id="consent"')[1]
    refused = send(web, patient, document, setup.ids[GP])
    assert refused.headers["location"].endswith("?erreur=SharingObjected")
    assert letters(setup.uow) == []
    with setup.uow() as uow:
        assert uow.session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0
        assert uow.session.scalars(select(AuditEvent.reason).where(
            AuditEvent.action == "patient:letter:refused")).all() == ["the patient objected to sharing"]
    assert "opposé" in web.get(refused.headers["location"]).text or "objected" in web.get(
        refused.headers["location"]).text

    post(web, f"/patients/{patient}/opposition", {"objects": "non"})
    accepted = send(web, patient, document, setup.ids[GP])
    assert accepted.headers["location"].endswith("?envoye=1")
    assert [letter.status for letter in letters(setup.uow)] == ["queued"]


def test_a_recipient_must_be_a_correspondent_with_a_mailbox_and_a_certificate(
        web: TestClient, setup: Setup, patient_with_letter: tuple[str, str]) -> None:
    patient, document = patient_with_letter
    assert send(web, patient, document, setup.ids[OTHER_GP]).headers["location"].endswith("NotACorrespondent")
    with setup.uow() as uow:  # a professional of the directory whose certificate is unknown
        unknown = next(p for p in directory.search(uow.session, "demo") + directory.search(uow.session, "Lens")
                       if not p.has_certificate and p.mss_address)
    attach(web, patient, unknown.id, role="other")
    assert send(web, patient, document, setup.ids[GP], unknown.id).headers["location"].endswith("NoSecureMailbox")
    assert send(web, patient, document).headers["location"].endswith("NoRecipient")
    assert letters(setup.uow) == []


def test_a_porter_or_a_nurse_cannot_send_and_an_unrelated_nurse_cannot_even_look(
        web: TestClient, setup: Setup, patient_with_letter: tuple[str, str]) -> None:
    patient, document = patient_with_letter
    for who in (PORTER, NURSE):
        login(web, who)
        response = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                            json={"document_id": document, "professional_ids": [str(setup.ids[GP])]})
        assert response.status_code == 403, (who, response.text)
    with setup.uow() as uow:
        people, _ = staff.list_staff(uow.session, unit_code="LENS-MED-CARDIO")
    outsider = next(p.username for p in people if p.profession == "nurse")
    login(web, outsider)
    assert web.get(f"/patients/{patient}/correspondants").status_code == 404
    assert web.get(f"/api/patients/{patient}/letters").status_code == 404
    cardiologist = next(p.username for p in people if p.profession == "physician")
    login(web, cardiologist)  # a physician, but not in this patient's care team
    response = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                        json={"document_id": document, "professional_ids": [str(setup.ids[GP])]})
    assert response.status_code == 404
    assert letters(setup.uow) == []


def test_the_json_api_sends_and_lists_letters(web: TestClient, setup: Setup,
                                              patient_with_letter: tuple[str, str]) -> None:
    patient, document = patient_with_letter
    response = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                        json={"document_id": document, "professional_ids": [str(setup.ids[GP])]})
    assert response.status_code == 202, response.text
    listed = web.get(f"/api/patients/{patient}/letters").json()["letters"]
    assert [(x["id"], x["status"]) for x in listed] == [(response.json()["id"], "queued")]
    other = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                     json={"document_id": str(uuid.uuid4()), "professional_ids": [str(setup.ids[GP])]})
    assert other.status_code == 404


def test_an_unconfigured_instance_refuses_to_send(db_url: str, clock: FixedClock) -> None:
    app = create_app(Settings(mode="test", database_url=db_url, workers=False), clock=clock)
    try:
        with pytest.raises(sending.MessagingNotConfigured):
            sending.send_document(app.state.container.uow, None, uuid.uuid4(), uuid.uuid4(), [uuid.uuid4()],  # type: ignore[arg-type]
                                  app.state.container.ports["care"], None)
    finally:
        app.state.container.engine.dispose()


# --- delivery and read reports ---------------------------------------------------------------------

def dsn(message_id: str, recipient: str, action: str = "delivered", status: str = "2.0.0",
        envelope_id: str | None = None) -> bytes:
    envid = f"Original-Envelope-Id: {envelope_id}\r\n" if envelope_id else ""
    return (
        "From: MAILER-DAEMON@relay.mssante.fr\r\nTo: " + GROUP_MAILBOX + "\r\nSubject: Delivery Status Notification\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message was processed.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; relay.mssante.fr\r\n{envid}\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        + ("Diagnostic-Code: smtp; 550 5.1.1 mailbox unknown\r\n" if action == "failed" else "") + "\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {GROUP_MAILBOX}\r\nMessage-ID: {message_id}\r\nSubject: x\r\n\r\n"
        "--b1--\r\n").encode()


def mdn(message_id: str, recipient: str, disposition: str = "displayed") -> bytes:
    return (
        f"From: {recipient}\r\nTo: {GROUP_MAILBOX}\r\nSubject: Read: letter\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="b2"\r\n\r\n'
        "--b2\r\nContent-Type: text/plain\r\n\r\nThe message was displayed.\r\n"
        "--b2\r\nContent-Type: message/disposition-notification\r\n\r\n"
        f"Reporting-UA: mailer.example; Test\r\nFinal-Recipient: rfc822; {recipient}\r\n"
        f"Original-Message-ID: {message_id}\r\nDisposition: manual-action/MDN-sent-manually; {disposition}\r\n\r\n"
        "--b2--\r\n").encode()


def test_dsn_and_mdn_move_the_letter_forward_never_back(web: TestClient, setup: Setup,
                                                       patient_with_letter: tuple[str, str]) -> None:
    patient, document = patient_with_letter
    send(web, patient, document, setup.ids[GP])
    (letter,) = letters(setup.uow)
    address = letter.recipients[0]["address"]
    with setup.uow() as uow:
        sending.record_relayed(uow.session, letter.id, sending.Relayed([address], {}), now=setup.clock.now())
        uow.commit()
    assert letters(setup.uow)[0].status == "sent"
    assert sending.apply_report(setup.uow(), dsn(letter.message_id, address)) == letter.id
    assert letters(setup.uow)[0].status == "delivered"
    assert sending.apply_report(setup.uow(), mdn(letter.message_id, address)) == letter.id
    after = letters(setup.uow)[0]
    assert after.status == "read" and after.read_at == setup.clock.now()
    # a late "delayed" report changes nothing; a report about someone else's letter is ignored
    sending.apply_report(setup.uow(), dsn(letter.message_id, address, action="delayed", status="4.4.1"))
    assert letters(setup.uow)[0].status == "read"
    assert sending.apply_report(setup.uow(), dsn("<unknown@elsewhere.fr>", address)) is None
    page = web.get(f"/patients/{patient}/correspondants").text.split('id="letters"')[1]
    assert 'data-status="read"' in page


def test_a_failure_dsn_found_by_envelope_id_marks_the_letter_failed(web: TestClient, setup: Setup,
                                                                   patient_with_letter: tuple[str, str]) -> None:
    patient, document = patient_with_letter
    send(web, patient, document, setup.ids[GP])
    (letter,) = letters(setup.uow)
    address = letter.recipients[0]["address"]
    raw = dsn("<not-ours@relay>", address, action="failed", status="5.1.1", envelope_id=str(letter.id))
    assert sending.apply_report(setup.uow(), raw) == letter.id
    failed = letters(setup.uow)[0]
    assert failed.status == "failed" and "5.1.1" in (failed.status_detail or "")
    with pytest.raises(rules.ReportUnreadable):
        sending.apply_report(setup.uow(), b"From: x@y.fr\r\nSubject: hello\r\n\r\nnot a report\r\n")


def test_the_mail_gateway_posts_reports_and_staff_cannot(web: TestClient, setup: Setup,
                                                        patient_with_letter: tuple[str, str]) -> None:
    patient, document = patient_with_letter
    send(web, patient, document, setup.ids[GP])
    (letter,) = letters(setup.uow)
    body = dsn(letter.message_id, letter.recipients[0]["address"])
    assert web.post("/api/messaging/reports", content=body,
                    headers={"x-csrf-token": form_token(web)}).status_code == 403
    gateway = TestClient(setup.app, base_url="http://testserver")
    with setup.app.state.container.session_factory() as s:
        create_account(s, username="passerelle-mss", display_name="Passerelle MSSanté", roles={Role.INTERFACE},
                       password=None, now_=setup.clock.now())
        s.commit()
    token = create_api_token(setup.uow(), SYSTEM_ACTOR, username="passerelle-mss", name="tests")
    gateway.headers["authorization"] = f"Bearer {token}"
    with gateway:
        assert gateway.post("/api/messaging/reports", content=body).json() == {"letter_id": str(letter.id)}
        refused = gateway.post("/api/messaging/reports", content=b"Subject: no\r\n\r\nnot a report")
        assert refused.status_code == 422 and refused.json()["rule"] == "ReportUnreadable"
    assert letters(setup.uow)[0].status == "delivered"


def test_a_sealed_read_receipt_is_opened_with_the_group_key(web: TestClient, setup: Setup,
                                                            patient_with_letter: tuple[str, str]) -> None:
    patient, document = patient_with_letter
    send(web, patient, document, setup.ids[GP])
    (letter,) = letters(setup.uow)
    gp = setup.pki.professionals[GP]
    receipt = email.message_from_bytes(mdn(letter.message_id, gp.email), _class=EmailMessage,
                                       policy=email.policy.SMTP)
    sealed = smime.seal_message(letter_id="receipt-1", domain="demo-naho.mssante.fr", sender=gp,
                                to=[GROUP_MAILBOX], recipient_certificates=[setup.pki.group.certificate],
                                subject="Lu", content=receipt, date=setup.clock.now())
    config = setup.app.state.container.ports["messaging"]
    with pytest.raises(rules.ReportUnreadable):  # without our key it cannot be read
        sending.apply_report(setup.uow(), sealed.as_bytes())
    assert sending.apply_report(setup.uow(), sealed.as_bytes(), config) == letter.id
    assert letters(setup.uow)[0].status == "read"


def test_correspondents_letters_and_objections_follow_a_merge_and_come_back_on_undo(
        web: TestClient, setup: Setup, patient_with_letter: tuple[str, str]) -> None:
    merged, document = patient_with_letter
    send(web, merged, document, setup.ids[GP])
    post(web, f"/patients/{merged}/opposition", {"objects": "oui"})
    survivor = admit(web, name="Carpentier", born="1951-03-02")
    container = setup.app.state.container
    vigilance = Actor(uuid.uuid4(), "iv", "Identitovigilance", frozenset({Role.IDENTITY_VIGILANCE}))
    merge_id = identity.merge_patients(container.uow(), vigilance, uuid.UUID(survivor), uuid.UUID(merged),
                                       "same person, typed twice", container.ports["care"],
                                       container.ports["patient_movers"])
    with setup.uow() as uow:
        assert [c.professional.rpps for c in correspondents.current(uow.session, uuid.UUID(survivor))] == [GP]
        assert len(sending.letters_of(uow.session, uuid.UUID(survivor))) == 1
        assert not consent.sharing_allowed(uow.session, uuid.UUID(survivor), consent.COMMUNITY_PROFESSIONALS)
    identity.undo_merge(container.uow(), vigilance, merge_id, container.ports["care"],
                        container.ports["patient_movers"])
    with setup.uow() as uow:
        assert correspondents.current(uow.session, uuid.UUID(survivor)) == []
        assert len(sending.letters_of(uow.session, uuid.UUID(merged))) == 1
        assert consent.sharing_allowed(uow.session, uuid.UUID(survivor), consent.COMMUNITY_PROFESSIONALS)


def test_an_unreadable_mailbox_certificate_stops_the_start(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    (tmp_path / "group.crt").write_text("not a certificate")
    (tmp_path / "group.key").write_text("not a key")
    with pytest.raises(PkiConfigurationInvalid, match="cannot load"):
        create_app(Settings(mode="test", database_url=db_url, workers=False,
                            messaging_certificate=tmp_path / "group.crt", messaging_private_key=tmp_path / "group.key"),
                   clock=clock)
