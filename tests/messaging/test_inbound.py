"""Receiving: letters from community professionals in the group mailbox, opened, checked, matched
to a patient with certainty (or left for a person), filed in the chart; refusals answered; DSN/MDN
applied to our letters; each message once, whatever the re-deliveries."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import time
import uuid
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.messaging import inbound, mailbox, sending, smime, xdm
from naho.messaging.inbound_models import InboundLetter
from naho.messaging.pki import Identity, TestAuthority
from naho.platform.audit import AuditEvent
from naho.platform.clock import FixedClock
from naho.platform.outbox import OutboxMessage
from naho.record.models import ClinicalDocument
from tests.messaging.test_sending import (
    GP,
    GROUP_MAILBOX,
    PDF,
    Setup,
    admit,
    attach,
    dsn,
    file_document,
    letters,
    post,
    send,
    setup_fixture,  # noqa: F401 - the fixtures "setup" and "web"
    web_fixture,  # noqa: F401
)
from tests.personas import CLERK, PHYSICIAN, PORTER, VIGILANCE, form_token, login

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

LENS = "62498"  # INSEE code of Lens
LETTER_PDF = b"%PDF-1.4\n% courrier du medecin traitant\n" + bytes(range(256)) * 3 + b"\n%%EOF\n"


def register(client: TestClient, name: str = "Carpentier", first: str = "Odette", born: str = "1941-03-14",
             sex: str = "F", place: str | None = LENS, unit: str | None = None) -> tuple[str, str]:
    """(patient id, IPP) registered by the admission desk; admitted into `unit` when given."""
    login(client, CLERK)
    token = form_token(client)
    body = {"birth_name": name, "first_names": first, "sex": sex, "birth_date": born}
    if place:
        body["birth_place"] = place
    response = client.post("/api/patients", headers={"x-csrf-token": token}, json=body)
    assert response.status_code in (200, 201), response.text
    patient = response.json()
    if unit:
        stay = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
            "patient_id": patient["id"], "establishment_code": "LENS", "encounter_class": "inpatient",
            "unit_code": unit})
        assert stay.status_code in (200, 201), stay.text
    return str(patient["id"]), str(patient["ipp"])


def package(setup: Setup, *, name: str = "CARPENTIER", first: str = "ODETTE", born: str = "19410314",
            sex: str = "F", place: str | None = LENS, patient_id: str | None = None,
            document: bytes = LETTER_PDF, number: int = 7) -> bytes:
    """An IHE_XDM.ZIP as a GP's software writes it: the patient under the GP's local id, with the
    traits in sourcePatientInfo (PID-5, PID-7, PID-8, the birth place as PAM FR's PID-11 BDL)."""
    now = setup.clock.now()
    author = xdm.Author("819990000001^LECOMTE^Camille^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS", "Cabinet Lecomte")
    data = xdm.pack(xdm.Submission(
        uid_root="1.2.250.1.999.1", number=number, patient_id=patient_id or "A4521^^^&1.2.250.1.999.1.9&ISO^PI",
        author=author, title="Courrier du médecin traitant", submitted_at=now,
        documents=[xdm.Document(document, "application/pdf", "Courrier du médecin traitant",
                                xdm.TYPE_DISCHARGE_LETTER, xdm.FORMAT_PDF, now)]))
    values = [f"PID-5|{name}^{first}^^^^^L", f"PID-7|{born}", f"PID-8|{sex}"]
    if place:
        values.append(f"PID-11|^^^^^^BDL^^{place}")
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename.endswith("METADATA.XML"):
                root = ET.fromstring(content)
                entry = next(root.iter(f"{{{xdm.RIM}}}ExtrinsicObject"))
                slot = ET.Element(f"{{{xdm.RIM}}}Slot", name="sourcePatientInfo")
                value_list = ET.SubElement(slot, f"{{{xdm.RIM}}}ValueList")
                for value in values:
                    ET.SubElement(value_list, f"{{{xdm.RIM}}}Value").text = value
                entry.insert(0, slot)
                content = ET.tostring(root, encoding="utf-8", xml_declaration=True)
            target.writestr(info, content)
    return out.getvalue()


def sealed_letter(setup: Setup, *, sender: Identity | None = None, letter_id: str | None = None,
                  **traits: object) -> bytes:
    """A letter signed by the GP (or `sender`) and encrypted for the group's mailbox."""
    content = smime.build_content("Cher confrère, ci-joint mon courrier.\n", [
        smime.Attachment("IHE_XDM.ZIP", "application/zip", package(setup, **traits)),  # type: ignore[arg-type]
        smime.Attachment("courrier.pdf", "application/pdf", LETTER_PDF)])
    message = smime.seal_message(
        letter_id=letter_id or str(uuid.uuid4()), domain="demo-naho.mssante.fr",
        sender=sender or setup.pki.professionals[GP], to=[GROUP_MAILBOX],
        recipient_certificates=[setup.pki.group.certificate], subject="Courrier - CARPENTIER Odette",
        content=content, date=setup.clock.now())
    return message.as_bytes(policy=email.policy.SMTP)


def receive(setup: Setup, raw: bytes) -> inbound.InboundResult:
    container = setup.app.state.container
    return inbound.receive_message(setup.uow(), raw, config=container.ports["messaging"], port=container.ports["care"])


def documents_of(setup: Setup, patient: str) -> list[bytes]:
    with setup.uow() as uow:
        return list(uow.session.scalars(select(ClinicalDocument.content).where(
            ClinicalDocument.patient_id == uuid.UUID(patient))))


def inbound_rows(setup: Setup) -> list[InboundLetter]:
    with setup.uow() as uow:
        rows = list(uow.session.scalars(select(InboundLetter).order_by(InboundLetter.received_at)))
        uow.session.expunge_all()
        return rows


def answers(setup: Setup) -> list[OutboxMessage]:
    with setup.uow() as uow:
        rows = list(uow.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == inbound.ANSWER_TOPIC)))
        uow.session.expunge_all()
        return rows


def actions(setup: Setup) -> list[str]:
    with setup.uow() as uow:
        return list(uow.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


# --- filed -----------------------------------------------------------------------------------------

def test_a_sealed_letter_from_the_gp_is_filed_for_the_right_patient_once(web: TestClient, setup: Setup) -> None:
    patient, _ipp = register(web)
    other, _ = register(web, name="Carpentier", first="Lucienne", born="1944-07-02")
    raw = sealed_letter(setup)

    result = receive(setup, raw)
    assert result.status == "filed" and result.patient_id == uuid.UUID(patient), result
    assert documents_of(setup, patient) == [LETTER_PDF] and documents_of(setup, other) == []
    (row,) = inbound_rows(setup)
    assert row.professional_id == setup.ids[GP] and row.sender == setup.pki.professionals[GP].email
    assert row.document_ids == [str(result.document_ids[0])] and answers(setup) == []
    assert inbound.FILE in actions(setup)

    # The relay delivers it again: same Message-ID, nothing changes.
    again = receive(setup, raw)
    assert again.duplicate and again.id == result.id and again.status == "filed"
    assert documents_of(setup, patient) == [LETTER_PDF] and len(inbound_rows(setup)) == 1


def qualify(client: TestClient, patient: str) -> tuple[str, str]:
    """The admission desk retrieves the INS (simulated INSi) and checks an identity card: qualified."""
    login(client, CLERK)
    client.post(f"/patients/{patient}/identite/insi", data={"csrf_token": form_token(client)})
    qualified = client.post(f"/api/patients/{patient}/validation", json={"proof": "national_id_card"},
                            headers={"x-csrf-token": form_token(client)}).json()
    assert qualified["status"] == "qualified", qualified
    return qualified["ins"], qualified["ins_oid"]


def test_a_letter_naming_a_qualified_identity_by_its_ins_is_filed_unless_its_traits_contradict(
        web: TestClient, setup: Setup) -> None:
    patient, _ = register(web, name="Lefevre", first="Jeanne Marie", born="1948-03-12")
    ins, oid = qualify(web, patient)
    cx = f"{ins}^^^&{oid}&ISO^NH"
    # No birth place in the package: the traits alone would be only probable; the INS is certain.
    by_ins = receive(setup, sealed_letter(setup, patient_id=cx, name="LEFEVRE", first="JEANNE", born="19480312",
                                          place=None))
    assert (by_ins.status, by_ins.patient_id) == ("filed", uuid.UUID(patient))
    contradicted = receive(setup, sealed_letter(setup, patient_id=cx, name="MARTIN", first="PAUL", born="19900101",
                                                sex="M", place=None))
    assert (contradicted.status, contradicted.rule) == ("unmatched", "TraitsContradictIns")
    assert documents_of(setup, patient) == [LETTER_PDF]


def test_a_forgery_reusing_the_message_id_does_not_get_the_real_letter_dropped(web: TestClient, setup: Setup) -> None:
    patient, _ = register(web)
    letter = sealed_letter(setup)
    message_id = email.message_from_bytes(letter, policy=email.policy.compat32)["Message-ID"]
    forged = f"From: pirate@ailleurs.fr\r\nMessage-ID: {message_id}\r\n\r\nrien\r\n".encode()
    assert receive(setup, forged).status == "refused"
    genuine = receive(setup, letter)
    assert genuine.status == "filed" and not genuine.duplicate
    # A true re-delivery (a relay added a trace header, a store rewrote CRLF to LF) is recognised.
    redelivered = b"Received: from relay.mssante.fr by mx.ght-artois.fr\r\n" + letter.replace(b"\r\n", b"\n")
    assert receive(setup, redelivered).duplicate and receive(setup, forged).duplicate
    assert documents_of(setup, patient) == [LETTER_PDF] and len(inbound_rows(setup)) == 2


# --- refused ---------------------------------------------------------------------------------------

def envelope(entity: bytes, setup: Setup, sender: str, message_id: str) -> bytes:
    """Encrypt any entity for the group's mailbox, to forge what naho would never accept."""
    body = pkcs7.PKCS7EnvelopeBuilder().set_data(entity).add_recipient(setup.pki.group.certificate).encrypt(
        serialization.Encoding.SMIME, [])
    return f"From: {sender}\r\nTo: {GROUP_MAILBOX}\r\nMessage-ID: {message_id}\r\nSubject: x\r\n".encode() + body


def decrypted(setup: Setup, raw: bytes) -> bytes:
    group = setup.pki.group
    return pkcs7.pkcs7_decrypt_smime(raw, group.certificate, group.private_key, [])


def test_tampered_unsigned_and_untrusted_letters_are_refused_with_their_reason_and_answered(
        web: TestClient, setup: Setup) -> None:
    patient, _ = register(web)
    gp = setup.pki.professionals[GP]
    genuine = decrypted(setup, sealed_letter(setup))
    tampered = envelope(genuine.replace(b"ci-joint", b"CI-JOINT"), setup, gp.email, "<tampered@demo>")
    unsigned_entity = smime.build_content("Sans signature", [
        smime.Attachment("IHE_XDM.ZIP", "application/zip", package(setup))]).as_bytes(policy=email.policy.SMTP)
    unsigned = envelope(unsigned_entity, setup, gp.email, "<unsigned@demo>")
    rogue = TestAuthority("Rogue", setup.clock.now()).issue_professional(gp.email, "Faux", "Nulle part")
    untrusted = sealed_letter(setup, sender=rogue)

    outcomes = {name: receive(setup, raw) for name, raw in
                (("tampered", tampered), ("unsigned", unsigned), ("untrusted", untrusted))}
    assert {name: (r.status, r.rule) for name, r in outcomes.items()} == {
        "tampered": ("refused", "SignatureInvalid"), "unsigned": ("refused", "MessageNotSigned"),
        "untrusted": ("refused", "SignerNotTrusted")}
    assert all(r.reason and r.answer_queued for r in outcomes.values())
    assert documents_of(setup, patient) == []
    queued = answers(setup)
    assert len(queued) == 3
    rows = {r.message_id: r for r in inbound_rows(setup)}
    answer = email.message_from_bytes(rows["<tampered@demo>"].answer or b"", policy=email.policy.compat32)
    assert answer["To"] == gp.email and answer["Auto-Submitted"] == "auto-replied"
    assert answer.get_content_type() == "multipart/report"
    assert answer.get_param("report-type") == "disposition-notification"
    notification = answer.as_string()
    assert "Original-Message-ID: <tampered@demo>" in notification and "processed/error" in notification
    assert "Error: SignatureInvalid:" in notification and "CARPENTIER" not in notification
    assert (rows["<tampered@demo>"].answer or b"").isascii()  # no relay needs 8BITMIME for it
    assert actions(setup).count(inbound.REFUSED_ACTION) == 3
    # A refused mail delivered again is not answered twice.
    assert receive(setup, tampered).duplicate and len(answers(setup)) == 3


def test_the_answer_reaches_the_sender_through_the_relay(web: TestClient, setup: Setup, tmp_path: Path) -> None:
    from naho.messaging import sink

    gp = setup.pki.professionals[GP]
    unsigned = envelope(b"Content-Type: text/plain\r\n\r\nbonjour\r\n", setup, gp.email, "<plain@demo>")
    assert receive(setup, unsigned).rule == "MessageNotSigned"
    controller = aiosmtpd_controller.Controller(sink.SinkHandler(tmp_path / "relay"), hostname="127.0.0.1",
                                                port=setup.smtp_port)
    controller.start()
    try:
        assert setup.worker().run_once() == 1
    finally:
        controller.stop()
    (delivered,) = sink.stored(tmp_path / "relay").values()
    assert b"Original-Message-ID: <plain@demo>" in delivered and b"Error: MessageNotSigned" in delivered


def test_a_letter_without_a_valid_xdm_package_is_refused(web: TestClient, setup: Setup) -> None:
    gp = setup.pki.professionals[GP]
    content = smime.build_content("x", [smime.Attachment("IHE_XDM.ZIP", "application/zip", b"PK\x03\x04 broken")])
    raw = smime.seal_message(letter_id="broken", domain="demo-naho.mssante.fr", sender=gp, to=[GROUP_MAILBOX],
                             recipient_certificates=[setup.pki.group.certificate], subject="x", content=content,
                             date=setup.clock.now()).as_bytes()
    result = receive(setup, raw)
    assert (result.status, result.rule) == ("refused", "XdmPackageInvalid") and result.answer_queued


def test_a_document_the_chart_does_not_keep_refuses_the_letter_even_for_an_unknown_patient(
        web: TestClient, setup: Setup) -> None:
    patient, _ = register(web)  # CARPENTIER Odette is known, INCONNU is not
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2
    for name in ("CARPENTIER", "INCONNU"):
        result = receive(setup, sealed_letter(setup, name=name, document=image))
        assert (result.status, result.rule) == ("refused", "DocumentRefused") and result.answer_queued
        assert "DOC0001" in (result.reason or "")
    assert [r.status for r in inbound_rows(setup)] == ["refused", "refused"] and documents_of(setup, patient) == []


# --- the worklist ----------------------------------------------------------------------------------

def test_an_unknown_patient_waits_and_identity_vigilance_files_it_by_ipp(web: TestClient, setup: Setup) -> None:
    result = receive(setup, sealed_letter(setup, name="INCONNU", first="PERSONNE"))
    assert (result.status, result.rule, result.patient_id) == ("unmatched", "UnknownPatient", None)
    patient, ipp = register(web)  # registered afterwards: a person must say it is them

    login(web, PORTER)
    assert web.get("/messagerie/a-rapprocher").status_code == 403
    login(web, VIGILANCE)
    page = web.get("/messagerie/a-rapprocher").text
    assert f'id="letter-{result.id}"' in page and "INCONNU PERSONNE" in page
    bad = post(web, f"/messagerie/a-rapprocher/{result.id}", {"ipp": "99999999"})
    assert bad.headers["location"].endswith("?erreur=patient")
    response = post(web, f"/messagerie/a-rapprocher/{result.id}", {"ipp": ipp})
    assert response.status_code == 303 and response.headers["location"] == f"/patients/{patient}"
    assert documents_of(setup, patient) == [LETTER_PDF]
    (row,) = inbound_rows(setup)
    assert row.status == "filed" and row.resolved_by and str(row.patient_id) == patient
    assert f'id="letter-{result.id}"' not in web.get("/messagerie/a-rapprocher").text
    assert {inbound.UNMATCHED_ACTION, inbound.MATCH, inbound.WORKLIST_VIEWED} <= set(actions(setup))
    # Matched already: a second match is refused.
    assert post(web, f"/messagerie/a-rapprocher/{result.id}", {"ipp": ipp}).status_code == 404


def test_a_probable_match_is_never_filed_automatically(web: TestClient, setup: Setup) -> None:
    patient, _ = register(web)
    # Same names, birth date and sex, but no birth place: a probable match only.
    no_place = receive(setup, sealed_letter(setup, place=None))
    typo = receive(setup, sealed_letter(setup, first="ODETE"))
    assert (no_place.status, no_place.rule) == ("unmatched", "NoCertainMatch")
    assert (typo.status, typo.rule) == ("unmatched", "NoCertainMatch")
    assert documents_of(setup, patient) == []


def test_a_physician_files_a_waiting_letter_for_a_patient_of_their_care_team_only(
        web: TestClient, setup: Setup) -> None:
    result = receive(setup, sealed_letter(setup, name="INCONNU", first="PERSONNE"))
    _elsewhere, other_ipp = register(web, name="Vasseur", first="Rene", born="1950-01-01", sex="M")
    ours, ipp = register(web, name="Deprez", first="Lucien", born="1937-11-08", sex="M", unit="LENS-MED-MIN")
    login(web, PHYSICIAN)
    assert web.get("/messagerie/a-rapprocher").status_code == 200
    refused = post(web, f"/messagerie/a-rapprocher/{result.id}", {"ipp": other_ipp})
    # The door: not in the care team, the same answer as an IPP nobody has.
    assert refused.headers["location"].endswith("?erreur=patient")
    assert inbound_rows(setup)[0].status == "unmatched"
    filed = post(web, f"/messagerie/a-rapprocher/{result.id}", {"ipp": ipp})
    assert filed.headers["location"] == f"/patients/{ours}"
    assert documents_of(setup, ours) == [LETTER_PDF]


# --- reports ---------------------------------------------------------------------------------------

def test_a_dsn_in_the_mailbox_moves_our_letter_forward(web: TestClient, setup: Setup) -> None:
    patient = admit(web)
    login(web, PHYSICIAN)
    document = file_document(web, patient, PDF)
    attach(web, patient, setup.ids[GP])
    send(web, patient, document, setup.ids[GP])
    (letter,) = letters(setup.uow)
    with setup.uow() as uow:
        sending.record_relayed(uow.session, letter.id, sending.Relayed([letter.recipients[0]["address"]], {}),
                               now=setup.clock.now())
        uow.commit()
    report = dsn(letter.message_id, letter.recipients[0]["address"]).replace(
        b"MIME-Version", b"Message-ID: <dsn-1@relay.mssante.fr>\r\nMIME-Version")
    result = receive(setup, report)
    assert result.status == "report" and str(letter.id) in (result.reason or "")
    assert letters(setup.uow)[0].status == "delivered"
    assert answers(setup) == []  # a report is never answered
    assert receive(setup, report).duplicate


# --- the mailbox transport -------------------------------------------------------------------------

def test_the_maildir_poller_records_each_message_once_and_keeps_a_failed_one(
        web: TestClient, setup: Setup, tmp_path: Path) -> None:
    patient, _ = register(web)
    box = tmp_path / "mailbox"
    box.mkdir()
    letter = sealed_letter(setup)
    (box / "0001.eml").write_bytes(letter)
    (box / "0002.eml").write_bytes(b"From: someone@elsewhere.fr\r\nMessage-ID: <plain@x>\r\n\r\nbonjour\r\n")
    source = mailbox.MaildirSource(box)

    def receiver(raw: bytes) -> inbound.InboundResult:
        return receive(setup, raw)

    assert mailbox.poll_mailbox(source, receiver) == 2
    assert sorted(p.name for p in (box / "done").iterdir()) == ["0001.eml", "0002.eml"]
    assert not list(box.glob("*.eml"))
    assert [r.status for r in inbound_rows(setup)] == ["filed", "refused"]
    # Delivered again (a second copy in the box): recorded as already received, filed once.
    (box / "0003.eml").write_bytes(letter)
    assert mailbox.poll_mailbox(source, receiver) == 1
    assert documents_of(setup, patient) == [LETTER_PDF]

    # A reception that fails (the database is down) leaves the message for the next poll.
    (box / "0004.eml").write_bytes(sealed_letter(setup))

    def down(raw: bytes) -> inbound.InboundResult:
        raise ConnectionError("database unavailable")

    assert mailbox.poll_mailbox(source, down) == 0 and (box / "0004.eml").exists()


def test_source_patient_info_gives_the_strict_traits() -> None:
    traits = inbound.source_patient_traits(["PID-5|de la Tour^Marie-Anne^Louise^^^^L", "PID-7|19800229",
                                            "PID-8|F", "PID-11|^^^^^^BDL^^2A004"])
    assert traits is not None
    assert (traits.birth_name, traits.first_names, traits.birth_date, traits.sex, traits.birth_place) == (
        "DE LA TOUR", ("MARIE-ANNE", "LOUISE"), dt.date(1980, 2, 29), "F", "2A004")
    assert inbound.source_patient_traits(["PID-5|X^Y^^^^^L", "PID-7|19800231", "PID-8|F"]) is None
    assert inbound.source_patient_traits(["PID-7|19800101", "PID-8|F"]) is None
    assert inbound.parse_cx("123456789012345^^^&1.2.250.1.213.1.4.8&ISO^NH") == (
        "123456789012345", "1.2.250.1.213.1.4.8", "NH")


def test_naho_serve_polls_the_configured_maildir_in_the_background(db_url: str, clock: FixedClock,
                                                                   tmp_path: Path) -> None:
    box = tmp_path / "boite"
    made = Setup(db_url, clock, tmp_path, workers=True, messaging_mailbox="maildir", messaging_maildir=box,
                 messaging_mailbox_poll_seconds=0.05, outbox_poll_seconds=0.05)
    try:
        with TestClient(made.app):
            (box / "0001.eml").write_bytes(sealed_letter(made, name="INCONNU", first="PERSONNE"))
            deadline = time.monotonic() + 10
            while not (box / "done" / "0001.eml").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        assert [(r.status, r.rule) for r in inbound_rows(made)] == [("unmatched", "UnknownPatient")]
    finally:
        made.close()
