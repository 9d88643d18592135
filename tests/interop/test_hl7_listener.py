"""ADT messages over a real MLLP socket into the real database of the test: stays, dedupe,
dead letters, refusals (PAM FR, ACK after commit)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import hl7
import pytest
from sqlalchemy import select

from naho.identity import rules as identity_rules
from naho.identity import service as identity
from naho.identity.schemas import PatientCreate
from naho.interop.hl7_listener import CHANNEL, start_listener
from naho.interop.mllp import frame
from naho.platform.deps import Container
from naho.platform.inbox import ACCEPTED, REFUSED, InboundMessage
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.record import service as record
from naho.record.schemas import EncounterPublic
from tests.interop.test_mllp import ServerThread, receive_frames

CLERK = Actor(uuid.uuid4(), "admission", "Admission test", frozenset({Role.ADMISSION_CLERK}))
BED = "LENS-MED-MIN-521-1"


def adt(trigger: str, control: str, *, ipp: str = "", foreign: str = "", name: str = "DURAND^MARIE^MARIE ANNE",
        birth: str = "19620314", sex: str = "F", location: str = "LENS-MED-MIN^521^1", at: str = "",
        patient_class: str = "I", visit: str = "") -> str:
    """A PAM FR message from the admission system GAM of Lens."""
    ids = "~".join(x for x in (f"{foreign}^^^GAM^PI" if foreign else "", f"{ipp}^^^NAHO^PI" if ipp else "") if x)
    segments = [
        f"MSH|^~\\&|GAM|LENS|NAHO|GHT-ARTOIS|20261125100000||ADT^{trigger}^ADT_A01|{control}|P|2.5^FRA^2.11"
        "|||||FRA|UNICODE UTF-8",
        "EVN||20261125100000",
        f"PID|1||{ids}||{name}^^^^L||{birth}|{sex}|||^^^^^FRA^BDL^^62498",
    ]
    if trigger not in ("A28", "A31"):
        segments.append("|".join(["PV1", "1", patient_class, location, *[""] * 15, visit]))
        action = "CANCEL" if trigger in ("A11", "A12", "A13", "A52", "A53") else "INSERT"
        segments.append(f"ZBE|{control}^GAM|{at}||{action}|N")
    return "\r".join(segments) + "\r"


def answer(ack: bytes) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, ERR-5 rule) of an acknowledgement."""
    message = hl7.parse(ack.decode())
    try:
        rule = str(message.segment("ERR")(5))
    except KeyError:
        rule = ""
    return str(message["MSA.F1"]), str(message["MSA.F2"]), rule


@pytest.fixture
def container(app) -> Container:  # type: ignore[no-untyped-def]
    return app.state.container  # type: ignore[no-any-return]


@pytest.fixture
def gam(container: Container) -> Iterator[ServerThread]:
    """naho's ADT listener on a free port of loopback, against the test's database."""
    server = ServerThread(lambda port: start_listener(container, "127.0.0.1", port))
    yield server
    server.close()


def patient_ipp(container: Container, birth_name: str) -> str:
    found = identity.search_patients(container.uow(), CLERK, birth_name, record.CARE)
    assert len(found) == 1, found
    return found[0].ipp


def stays(container: Container, ipp: str) -> list[EncounterPublic]:
    with container.uow() as uow:
        patient_id = identity.id_by_ipp(uow.session, ipp)
        assert patient_id is not None
        return record.stays_of(uow.session, patient_id)


def inbound(container: Container) -> list[InboundMessage]:
    with container.uow() as uow:
        rows = list(uow.session.scalars(select(InboundMessage).where(InboundMessage.channel == CHANNEL)
                                        .order_by(InboundMessage.received_at, InboundMessage.control_id)))
        uow.session.expunge_all()  # readable after the unit of work rolls back
        return rows


def registered(container: Container, gam: ServerThread, name: str, control: str) -> str:
    assert answer(gam.send(adt("A28", control, foreign=f"GAM-{control}", name=name)))[0] == "AA"
    return patient_ipp(container, name.split("^")[0])


def test_a_stay_sent_by_the_admission_system_is_recorded(container: Container, gam: ServerThread) -> None:
    assert answer(gam.send(adt("A28", "M1", foreign="GAM0001"))) == ("AA", "M1", "")
    ipp = patient_ipp(container, "DURAND")

    # Admission and transfer glued in one TCP write: two acknowledgements, in order.
    with socket.create_connection(("127.0.0.1", gam.port)) as sock:
        sock.sendall(frame(adt("A01", "M2", ipp=ipp, at="202611250800").encode())
                     + frame(adt("A02", "M3", ipp=ipp, location="LENS-MED-CARDIO^101^1", at="202611250900").encode()))
        assert [answer(a)[:2] for a in receive_frames(sock, 2)] == [("AA", "M2"), ("AA", "M3")]

        # The discharge cut across TCP writes.
        wire = frame(adt("A03", "M4", ipp=ipp, location="LENS-MED-CARDIO^101^1", at="202611251000").encode())
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for start in range(0, len(wire), 40):
            sock.sendall(wire[start:start + 40])
            time.sleep(0.01)
        assert [answer(a)[:2] for a in receive_frames(sock, 1)] == [("AA", "M4")]

    [stay] = stays(container, ipp)
    assert stay.status == "finished" and stay.establishment_code == "LENS"
    assert [(m.kind, m.trigger, m.bed_code, m.at) for m in stay.movements] == [
        ("admission", "A01", BED, datetime(2026, 11, 25, 7, 0, tzinfo=UTC)),
        ("transfer", "A02", "LENS-MED-CARDIO-101-1", datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
        ("discharge", "A03", "LENS-MED-CARDIO-101-1", datetime(2026, 11, 25, 9, 0, tzinfo=UTC)),
    ]
    assert {m.actor_label for m in stay.movements} == {"Interface ADT GAM/LENS (hl7:GAM/LENS)"}
    rows = inbound(container)
    assert sorted((r.control_id, r.status, r.message_type) for r in rows) == [
        ("M1", ACCEPTED, "ADT^A28^ADT_A01"), ("M2", ACCEPTED, "ADT^A01^ADT_A01"),
        ("M3", ACCEPTED, "ADT^A02^ADT_A01"), ("M4", ACCEPTED, "ADT^A03^ADT_A01")]
    assert all(r.sender == "GAM/LENS" and r.raw.startswith("MSH|") and r.ack for r in rows)


def test_a_message_sent_again_is_applied_once_and_gets_the_same_ack(container: Container, gam: ServerThread) -> None:
    ipp = registered(container, gam, "LEROY^PAUL", "R1")
    message = adt("A01", "R2", ipp=ipp, at="202611250800")
    first = gam.send(message)
    again = gam.send(message)
    assert answer(first) == ("AA", "R2", "") and again == first
    [stay] = stays(container, ipp)
    assert len(stay.movements) == 1
    assert [r.control_id for r in inbound(container)].count("R2") == 1


def test_the_same_message_on_two_connections_at_once_is_applied_once(container: Container,
                                                                      gam: ServerThread) -> None:
    ipp = registered(container, gam, "SIMON^JULES", "D1")
    message = frame(adt("A01", "D2", ipp=ipp, at="202611250800", location="LENS-MED-MIN").encode())
    replies: list[bytes] = []

    def send_once() -> None:
        with socket.create_connection(("127.0.0.1", gam.port)) as sock:
            sock.sendall(message)
            replies.extend(receive_frames(sock, 1))

    senders = [threading.Thread(target=send_once) for _ in range(2)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(30)
    assert len(replies) == 2 and replies[0] == replies[1] and answer(replies[0])[0] == "AA"
    [stay] = stays(container, ipp)  # one stay: the second transaction was rolled back whole
    assert len(stay.movements) == 1


def test_a_refused_message_sent_again_gets_the_same_refusal(container: Container, gam: ServerThread) -> None:
    message = adt("A14", "P1", foreign="GAM9")  # pending admission: an option naho does not take
    first = gam.send(message)
    assert answer(first)[0] == "AR" and gam.send(message) == first
    assert [(r.control_id, r.status) for r in inbound(container)] == [("P1", REFUSED)]


def test_a_malformed_message_is_rejected_and_kept_as_a_dead_letter(container: Container, gam: ServerThread) -> None:
    assert answer(gam.send(b"hello, this is not HL7")) == ("AR", "", "Unparsable")
    no_control_id = adt("A01", "", foreign="GAM1")
    assert answer(gam.send(no_control_id)) == ("AR", "", "ControlIdMissing")
    assert answer(gam.send(no_control_id))[0] == "AR"  # no key to recognise it: kept twice
    rows = inbound(container)
    assert [r.status for r in rows] == [REFUSED] * 3
    garbage = next(r for r in rows if r.raw.startswith("hello"))
    assert garbage.error is not None and garbage.error.startswith("Unparsable") and garbage.sender == "?"
    assert all(r.control_id.startswith("missing:") for r in rows)
    assert all(r.ack and "MSA|AR|" in r.ack for r in rows)


def test_an_occupied_bed_is_refused_with_its_rule(container: Container, gam: ServerThread) -> None:
    first = registered(container, gam, "MARTIN^LUC", "B1")
    second = registered(container, gam, "PETIT^ANNE", "B2")
    assert answer(gam.send(adt("A01", "B3", ipp=first, at="202611250800")))[0] == "AA"
    refused = gam.send(adt("A01", "B4", ipp=second, at="202611250900"))
    assert answer(refused) == ("AE", "B4", "BedAlreadyOccupied")
    assert "is taken" in hl7.parse(refused.decode())["ERR.F8"]
    assert stays(container, second) == []
    row = next(r for r in inbound(container) if r.control_id == "B4")
    assert row.status == REFUSED and row.error is not None and row.error.startswith("BedAlreadyOccupied")


def test_a_message_is_applied_whole_or_not_at_all(container: Container, gam: ServerThread) -> None:
    occupant = registered(container, gam, "MARTIN^LUC", "W1")
    assert answer(gam.send(adt("A01", "W2", ipp=occupant, at="202611250800")))[0] == "AA"
    # A new patient admitted into the taken bed: the identity it would create is not kept either.
    refused = gam.send(adt("A01", "W3", foreign="GAM-NEW", name="NOUVEAU^JEAN", sex="M", at="202611250900"))
    assert answer(refused)[2] == "BedAlreadyOccupied"
    assert identity.search_patients(container.uow(), CLERK, "NOUVEAU", record.CARE) == []


def test_a_new_patient_admitted_by_the_sender_is_registered(container: Container, gam: ServerThread) -> None:
    assert answer(gam.send(adt("A04", "N1", foreign="GAM-U", name="URGENT^LEA", patient_class="E",
                               location="LENS-URG-SAU", at="202611250800")))[0] == "AA"
    [stay] = stays(container, patient_ipp(container, "URGENT"))
    assert (stay.encounter_class, stay.movements[0].trigger, stay.bed_code) == ("emergency", "A04", None)


def test_an_unknown_patient_is_refused(container: Container, gam: ServerThread) -> None:
    foreign_only = gam.send(adt("A02", "U1", foreign="GAM-UNKNOWN", at="202611250800"))
    assert answer(foreign_only) == ("AR", "U1", "UnknownPatient")
    unknown_ipp = gam.send(adt("A02", "U2", ipp="09999999", at="202611250800"))
    assert answer(unknown_ipp) == ("AE", "U2", "UnknownPatient")
    assert "204^Unknown key identifier" in unknown_ipp.decode()
    assert {r.status for r in inbound(container)} == {REFUSED}


def test_leaves_and_cancellations_follow_pam_fr(container: Container, gam: ServerThread) -> None:
    ipp = registered(container, gam, "ROUX^EMMA", "L0")
    for control, trigger, at, where in [
        ("L1", "A01", "202611250700", "LENS-MED-MIN^521^1"),
        ("L2", "A21", "202611250730", "LENS-MED-MIN^521^1"),
        ("L3", "A22", "202611250800", "LENS-MED-MIN^521^1"),
        ("L4", "A02", "202611250830", "LENS-MED-CARDIO^101^1"),
        ("L5", "A12", "", "LENS-MED-MIN^521^1"),
        ("L6", "A03", "202611250900", "LENS-MED-MIN^521^1"),
        ("L7", "A13", "", "LENS-MED-MIN^521^1"),
    ]:
        assert answer(gam.send(adt(trigger, control, ipp=ipp, at=at, location=where))) == ("AA", control, ""), trigger
    [stay] = stays(container, ipp)
    assert stay.status == "in_progress" and stay.bed_code == BED  # transfer and discharge cancelled
    assert [(m.trigger, m.cancelled) for m in stay.movements] == [
        ("A01", False), ("A21", False), ("A22", False), ("A02", True), ("A03", True)]

    other = registered(container, gam, "BLANC^HUGO", "C0")
    assert answer(gam.send(adt("A01", "C1", ipp=other, at="202611250800",
                               location="LENS-MED-MIN^522^1")))[0] == "AA"
    assert answer(gam.send(adt("A11", "C2", ipp=other, location="LENS-MED-MIN^522^1")))[0] == "AA"
    [cancelled] = stays(container, other)
    assert cancelled.status == "cancelled" and cancelled.bed_code is None
    # Cancelling again: nothing left to cancel, said with the rule's name.
    assert answer(gam.send(adt("A11", "C3", ipp=other, location="LENS-MED-MIN^522^1")))[:1] == ("AE",)


def test_a_transfer_to_the_same_bed_is_refused_with_the_rule(container: Container, gam: ServerThread) -> None:
    ipp = registered(container, gam, "GIRARD^ZOE", "T0")
    assert answer(gam.send(adt("A01", "T1", ipp=ipp, at="202611250800")))[0] == "AA"
    assert answer(gam.send(adt("A02", "T2", ipp=ipp, at="202611250900"))) == ("AE", "T2", "TransferToSameLocation")


def test_a_qualified_identity_keeps_its_strict_traits(container: Container, gam: ServerThread) -> None:
    with container.uow() as uow:
        patient_id = identity.import_identity(
            uow.session, identity_rules.Traits("FONTAINE", None, ("CLAIRE",), "F", date(1980, 2, 2), "62498"),
            status=identity_rules.IdentityStatus.QUALIFIED, now=datetime(2026, 11, 1, tzinfo=UTC),
            actor_label="test", ins=("280026249812345", identity_rules.INS_NIR_TEST_OID))
        uow.commit()
    with container.uow() as uow:
        ipp = identity.summaries(uow.session, [patient_id])[patient_id].ipp
    same = adt("A31", "Q1", ipp=ipp, name="FONTAINE^CLAIRE", birth="19800202")
    assert answer(gam.send(same)) == ("AA", "Q1", "")
    renamed = adt("A31", "Q2", ipp=ipp, name="FONTENAY^CLAIRE", birth="19800202")
    assert answer(gam.send(renamed)) == ("AE", "Q2", "StrictTraitsLocked")
    a28 = adt("A28", "Q3", ipp=ipp, name="FONTAINE^CLAIRE", birth="19800203")
    assert answer(gam.send(a28)) == ("AE", "Q3", "StrictTraitsLocked")
    with container.uow() as uow:
        assert identity.summaries(uow.session, [patient_id])[patient_id].birth_name == "FONTAINE"


def test_an_a31_corrects_a_provisional_identity(container: Container, gam: ServerThread) -> None:
    ipp = registered(container, gam, "DUBOIS^MARC", "I1")
    change = adt("A31", "I2", ipp=ipp, name="DUBOIS^MARC", sex="M", birth="19700101")
    assert answer(gam.send(change)) == ("AA", "I2", "")
    with container.uow() as uow:
        patient_id = identity.id_by_ipp(uow.session, ipp)
        assert patient_id is not None
        assert identity.summaries(uow.session, [patient_id])[patient_id].birth_date == date(1970, 1, 1)
    # The same A31 again: nothing changes, still accepted.
    assert answer(gam.send(adt("A31", "I3", ipp=ipp, name="DUBOIS^MARC", sex="M", birth="19700101")))[0] == "AA"


def test_the_ipp_of_a_merged_record_leads_to_the_survivor(container: Container, gam: ServerThread) -> None:
    survivor = registered(container, gam, "LAMBERT^ALICE", "G1")
    # A probable duplicate sent by the admission system waits for identity vigilance.
    assert answer(gam.send(adt("A28", "G2", foreign="GAM-G2", name="LAMBERTT^ALYCE")))[2] == "PossibleDuplicates"
    merged = identity.register_patient(container.uow(), CLERK, PatientCreate(
        birth_name="LAMBERTT", first_names="ALYCE", sex="F", birth_date=date(1962, 3, 14)),
        confirm_reason="typed at the front desk").ipp
    vigilance = Actor(uuid.uuid4(), "iv", "Identitovigilance", frozenset({Role.IDENTITY_VIGILANCE}))
    with container.uow() as uow:
        ids = {ipp: identity.id_by_ipp(uow.session, ipp) for ipp in (survivor, merged)}
    identity.merge_patients(container.uow(), vigilance, ids[survivor], ids[merged],  # type: ignore[arg-type]
                            "same person, typing error", record.CARE, [record.MOVER])
    assert answer(gam.send(adt("A01", "G3", ipp=merged, at="202611250800")))[0] == "AA"
    assert len(stays(container, survivor)) == 1


def test_serve_starts_the_mllp_listener_when_a_port_is_set(db_url: str) -> None:
    """`naho serve` with NAHO_MLLP_PORT answers HL7 on that port (wired in app.py's lifespan)."""
    import socket as _socket

    from fastapi.testclient import TestClient as _Client

    from naho.app import create_app as _create_app
    from naho.config import Settings as _Settings
    from tests.conftest import free_port as _free_port

    port = _free_port()
    app = _create_app(_Settings(mode="test", database_url=db_url, workers=False, mllp_port=port))
    message = ("MSH|^~\\&|GAM|LENS|NAHO|GHT|20261125093000||ADT^A14^ADT_A05|WIRE-1|P|2.5^FRA^2.11\r"
               "EVN||20261125093000\rPID|1||123^^^GAM^PI||DUPONT^JEAN\r")
    with _Client(app), _socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"\x0b" + message.encode() + b"\x1c\r")
        reply = b""
        while not reply.endswith(b"\x1c\r"):
            chunk = sock.recv(4096)
            assert chunk, "the listener closed the connection without an ACK"
            reply += chunk
    assert b"MSA|AR|WIRE-1" in reply  # A14 is not handled: refused, with a reason
